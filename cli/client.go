package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
)

// maxErrorBody bounds how much of an error reply is read.
const maxErrorBody = 1 << 20

// Client talks to a lexgate gateway over mutual TLS, HTTP/3 or HTTP/2. Errors the
// gateway sends are returned as *[api.Error].
type Client struct {
	tc        *tls.Config
	base      string       // the first replica's URL; requests go to the current one (failoverRT)
	hc        *http.Client // control requests, to the current replica
	bulk      *http.Client // ciphertext up and down: HTTP/1.1 over TCP, else the control transport
	ids       idSource     // the SVID and bundles, current at each use
	id        spiffeid.ID
	gatewayID spiffeid.ID // the gateway's SPIFFE ID: the signer of custodial registrations
	log       *logState   // the audit log as verified by followLog, nil without log_key

	// The replicas (replicas.go): every address given, the transport mode,
	// and the replica in use with its transports, replaced by failover.
	addrs []string
	mode  string
	epMu  sync.Mutex // serializes failovers
	ep    atomic.Pointer[endpoint]

	// reconnect is how long one outage may last before a request gives up
	// (0, the default of Dial, never retries; lex sets --reconnect).
	reconnect time.Duration
	// reached is set once the gateway has answered: only then is a network
	// error an outage worth waiting out, not a wrong address.
	reached atomic.Bool
	verbose io.Writer // -v output, or nil
}

// verbosef prints a line on the -v output, if any.
func (c *Client) verbosef(format string, args ...any) {
	if c.verbose != nil {
		fmt.Fprintf(c.verbose, format+"\n", args...)
	}
}

// Dial loads the SVID and bundles of cfg and connects to its gateway with transport
// mode (TransportAuto, TransportQUIC or TransportTCP). With verbose not nil it says
// there which transport it chose and why.
func Dial(ctx context.Context, cfg *Config, mode string, verbose io.Writer) (*Client, error) {
	if err := cfg.checkNetwork(); err != nil {
		return nil, err
	}
	ids, err := cfg.openIDSource(ctx)
	if err != nil {
		return nil, err
	}
	svid, err := currentSVID(ids)
	if err == nil && cfg.SVIDCert != "" {
		// A file SVID out of its validity period: say so before the
		// handshake fails with a less helpful error.
		err = checkValidity(svid.Certificates[0], cfg.SVIDCert, time.Now())
	}
	if err != nil {
		ids.Close()
		return nil, err
	}
	tc := tlsConfig(ids, ids, cfg.gatewayID())
	addr, rt, name, err := connectAny(ctx, cfg.gateways(), mode, tc, verbose)
	if err != nil {
		ids.Close()
		return nil, err
	}
	c := &Client{
		tc:        tc,
		base:      "https://" + addr,
		ids:       ids,
		id:        svid.ID,
		gatewayID: cfg.gatewayID(),
		verbose:   verbose,
		addrs:     cfg.gateways(),
		mode:      mode,
	}
	c.ep.Store(&endpoint{addr: addr, rt: rt, transport: name, bulkRT: bulkTransport(mode, name, tc, rt, verbose)})
	c.hc = &http.Client{Transport: failoverRT{c: c}}
	c.bulk = &http.Client{Transport: failoverRT{c: c, bulk: true}}
	return c, nil
}

// SetReconnect sets how long one outage (the gateway restarting, the link
// dropping) may last before a request gives up; 0 never retries. A request
// is retried only once the gateway has answered this client.
func (c *Client) SetReconnect(d time.Duration) { c.reconnect = max(d, 0) }

// Close releases the client's connections.
func (c *Client) Close() error {
	err := c.ep.Load().close()
	c.ids.Close()
	return err
}

// ID is the caller's own SPIFFE ID, from its SVID when the client was made
// (a rotated SVID keeps the ID).
func (c *Client) ID() spiffeid.ID { return c.id }

// Transport is the transport in use: TransportQUIC or TransportTCP.
func (c *Client) Transport() string { return c.ep.Load().transport }

// do sends req and returns a 2xx response; any other reply becomes an error, the
// gateway's *api.Error when it sent one.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	return c.doWith(c.hc, req)
}

// doWith is do over the given HTTP client. A request that can be sent again
// (no body, or one net/http can rewind) is, after a network error or a 503,
// with backoff, for as long as the client's reconnect window allows: the
// gateway restarting costs a pause, not the command.
func (c *Client) doWith(hc *http.Client, req *http.Request) (*http.Response, error) {
	r := retrier{c: c} // once's errors name the request
	for {
		resp, err := c.once(hc, req)
		if err == nil || !replayable(req) || !r.again(req.Context(), err) {
			return resp, err
		}
		if req, err = again(req); err != nil {
			return nil, err
		}
	}
}

// once sends req one time; see do.
func (c *Client) once(hc *http.Client, req *http.Request) (*http.Response, error) {
	ep := c.ep.Load()
	resp, err := hc.Do(req)
	if err != nil {
		if herr := handshakeError(err); herr != nil {
			return nil, herr
		}
		if ep.transport == TransportTCP && req.Context().Err() == nil {
			if herr := diagnoseTLS(ep.addr, c.tc); herr != nil {
				return nil, herr
			}
		}
		return nil, &replicaError{addr: ep.addr, err: fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, explain(ep.addr, err))}
	}
	c.reached.Store(true)
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, replyError(req, resp)
}

// diagnoseTLS finds out whether a failed request over TCP was a refused handshake.
// In TLS 1.3 the server checks the client's certificate after the client thinks the
// handshake is done, so its alert can be lost to a reset connection; a fresh
// connection that reads until the alert (or a short deadline) tells.
func diagnoseTLS(addr string, tc *tls.Config) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, tc)
	if err != nil {
		return handshakeError(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 1))
	return handshakeError(err)
}

// replyError decodes the body of a non-2xx reply.
func replyError(req *http.Request, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e api.Error
	if err := json.Unmarshal(body, &e); err == nil && e.Code != "" {
		if resp.StatusCode == http.StatusConflict && e.Offset == 0 {
			e.Offset, _ = strconv.ParseInt(resp.Header.Get(api.HeaderUploadOffset), 10, 64)
		}
		return &e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return fmt.Errorf("%s %s: gateway answered %s: %s", req.Method, req.URL.Path, resp.Status, msg)
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return req, nil
}

// call sends in (if not nil) as JSON and decodes the reply into out (if not nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the reply: %w", method, path, err)
	}
	return nil
}

func transferPath(id string, suffix string) string {
	return api.PathTransfer + url.PathEscape(id) + suffix
}

// Keys returns the age recipients registered for id.
func (c *Client) Keys(ctx context.Context, id spiffeid.ID) (*api.KeysResponse, error) {
	var kr api.KeysResponse
	err := c.call(ctx, http.MethodGet, api.PathKeys+"?id="+url.QueryEscape(id.String()), nil, &kr)
	if err != nil {
		return nil, err
	}
	return &kr, nil
}

// RegisterKeys registers recipients as the caller's age recipients, replacing any
// earlier registration.
func (c *Client) RegisterKeys(ctx context.Context, recipients []string) error {
	svid, err := currentSVID(c.ids)
	if err != nil {
		return err
	}
	reg := api.Registration{ID: svid.ID.String(), Recipients: recipients}
	if prev, err := c.Keys(ctx, svid.ID); err == nil && prev.Registration != nil {
		reg.Previous = prev.Registration.Hash()
	}
	sr, err := api.SignRegistration(reg, svid.PrivateKey, svid.Certificates)
	if err != nil {
		return fmt.Errorf("sign the registration: %w", err)
	}
	return c.call(ctx, http.MethodPut, api.PathKeys, api.KeysRequest{Recipients: recipients, Registration: sr}, nil)
}

// CreateTransfer submits a signed manifest. Submitting the same one again returns the
// existing transfer.
func (c *Client) CreateTransfer(ctx context.Context, sm *api.SignedManifest) (*api.Transfer, error) {
	var t api.Transfer
	if err := c.call(ctx, http.MethodPost, api.PathTransfers, api.CreateTransferRequest{Manifest: *sm}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// SealTransfer completes a streamed transfer with its final signed manifest.
// Sealing again with the same manifest returns the ready transfer.
func (c *Client) SealTransfer(ctx context.Context, id string, sm *api.SignedManifest) (*api.Transfer, error) {
	var t api.Transfer
	if err := c.call(ctx, http.MethodPost, transferPath(id, "/seal"), api.SealRequest{Manifest: *sm}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// CancelTransfer deletes one of the caller's transfers whose upload is still in
// progress.
func (c *Client) CancelTransfer(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, transferPath(id, ""), nil, nil)
}

// Transfer returns a transfer's metadata, with its signed manifest.
func (c *Client) Transfer(ctx context.Context, id string) (*api.Transfer, error) {
	var t api.Transfer
	if err := c.call(ctx, http.MethodGet, transferPath(id, ""), nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Inbox lists the ready transfers addressed to the caller.
func (c *Client) Inbox(ctx context.Context) (*api.InboxResponse, error) {
	var ir api.InboxResponse
	if err := c.call(ctx, http.MethodGet, api.PathInbox, nil, &ir); err != nil {
		return nil, err
	}
	return &ir, nil
}

// Ack acknowledges receipt of a transfer.
func (c *Client) Ack(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, transferPath(id, "/ack"), nil, nil)
}

// ReportMismatch tells the gateway that the ciphertext of transfer id lex
// downloaded (size bytes with SHA-256 sum) does not match the signed
// manifest. The gateway checks its stored copy: a damaged one is quarantined
// and the reply is an *api.Error with api.CodeHashMismatch; an intact one is
// the verdict returned.
func (c *Client) ReportMismatch(ctx context.Context, id string, size int64, sum string) (api.IntegrityVerdict, error) {
	var v api.IntegrityVerdict
	err := c.call(ctx, http.MethodPost, transferPath(id, api.PathIntegrityReport), api.IntegrityReport{Size: size, SHA256: sum}, &v)
	return v, err
}

// UploadOffset asks how many bytes of a transfer's ciphertext the gateway holds.
func (c *Client) UploadOffset(ctx context.Context, id string) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodHead, transferPath(id, "/content"), nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return offsetHeader(resp)
}

// UploadChunk sends n bytes from body, to be stored at offset off, and returns the
// gateway's new durable offset. A 409 offset_mismatch is an *api.Error whose Offset
// says where to continue.
func (c *Client) UploadChunk(ctx context.Context, id string, off int64, body io.Reader, n int64) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodPatch, transferPath(id, "/content"), body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", api.ContentTypeChunk)
	req.Header.Set(api.HeaderUploadOffset, strconv.FormatInt(off, 10))
	resp, err := c.doWith(c.bulk, req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	return offsetHeader(resp)
}

func offsetHeader(resp *http.Response) (int64, error) {
	off, err := api.ParseOffset(resp.Header.Get(api.HeaderUploadOffset))
	if err != nil {
		return 0, fmt.Errorf("gateway sent a bad header: %w", err)
	}
	return off, nil
}

// Download requests a transfer's ciphertext from byte off on. The caller closes the
// body; partial reports whether the reply starts at off (206) rather than at 0 (200).
func (c *Client) Download(ctx context.Context, id string, off int64) (body io.ReadCloser, partial bool, err error) {
	req, err := c.newRequest(ctx, http.MethodGet, transferPath(id, "/content"), nil)
	if err != nil {
		return nil, false, err
	}
	// lex checks the whole ciphertext against the signed manifest before it
	// keeps a byte, and reports a mismatch (recvpipe.go).
	req.Header.Set(api.HeaderIntegrity, api.IntegrityRecipient)
	if off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	}
	resp, err := c.doWith(c.bulk, req)
	if err != nil {
		return nil, false, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, false, nil
	case http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(off, 10)+"-") {
			resp.Body.Close()
			return nil, false, fmt.Errorf("download %s: gateway sent range %q, asked for %d-", id, resp.Header.Get("Content-Range"), off)
		}
		return resp.Body, true, nil
	default:
		resp.Body.Close()
		return nil, false, errors.New("download " + id + ": unexpected " + resp.Status)
	}
}
