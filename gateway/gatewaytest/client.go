package gatewaytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/api"
)

// Client is a raw v1 API client for one identity, for tests that step outside
// what lex does: any method, path, header or body, over QUIC or TCP.
type Client struct {
	t    testing.TB
	env  *Env
	SVID *x509svid.SVID // the identity it presents
	HTTP *http.Client   // replace to change the transport
}

// LoadSVID loads the X.509-SVID of a dev PKI identity.
func (e *Env) LoadSVID(id string) *x509svid.SVID {
	e.t.Helper()
	s, err := certs.LoadSVID(e.SVIDFiles(id))
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// LoadBundles loads the dev trust bundles.
func (e *Env) LoadBundles() *x509bundle.Set {
	e.t.Helper()
	b, err := certs.LoadBundles(e.Bundles())
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// TLSConfig is a client TLS 1.3 config that authenticates the gateway and
// presents svid (no client certificate if svid is nil).
func (e *Env) TLSConfig(svid *x509svid.SVID) *tls.Config {
	gw := tlsconfig.AuthorizeID(spiffeid.RequireFromString(GatewayID))
	var c *tls.Config
	if svid == nil {
		c = tlsconfig.TLSClientConfig(e.LoadBundles(), gw)
	} else {
		c = tlsconfig.MTLSClientConfig(svid, e.LoadBundles(), gw)
	}
	c.MinVersion = tls.VersionTLS13
	return c
}

// HTTPClient is an HTTP client over HTTP/3 (overQUIC) or HTTP/2 with tlsConf,
// closed at the end of the test.
func HTTPClient(t testing.TB, tlsConf *tls.Config, overQUIC bool) *http.Client {
	var rt http.RoundTripper
	if overQUIC {
		tr := &http3.Transport{TLSClientConfig: tlsConf, QUICConfig: &quic.Config{HandshakeIdleTimeout: 3 * time.Second}}
		t.Cleanup(func() { tr.Close() })
		rt = tr
	} else {
		tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		rt = tr
	}
	return &http.Client{Transport: rt, Timeout: 30 * time.Second}
}

// NewClient returns a raw API client presenting the dev PKI identity id. In a
// subtest, call In(t) on it so failures are reported to the subtest.
func (e *Env) NewClient(id string, overQUIC bool) *Client {
	svid := e.LoadSVID(id)
	hc := HTTPClient(e.t, e.TLSConfig(svid), overQUIC)
	e.clientsMu.Lock()
	e.clients = append(e.clients, hc)
	e.clientsMu.Unlock()
	return e.ClientWith(e.t, svid, hc)
}

// ClientWith returns a raw API client that signs manifests with svid, sends
// requests with hc (whose TLS config should present the same SVID) and
// reports failures to t.
func (e *Env) ClientWith(t testing.TB, svid *x509svid.SVID, hc *http.Client) *Client {
	return &Client{t: t, env: e, SVID: svid, HTTP: hc}
}

// In returns the same client reporting failures to t, for use in a subtest.
func (c *Client) In(t testing.TB) *Client {
	cc := *c
	cc.t = t
	return &cc
}

// Do sends a request and returns the status, body and headers; a transport
// error fails the test.
func (c *Client) Do(method, path string, body io.Reader, hdr map[string]string) (int, []byte, http.Header) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, "https://"+c.env.Addr+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// JSON sends in (if not nil) as a JSON body and returns the status and body.
func (c *Client) JSON(method, path string, in any) (int, []byte) {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	st, b, _ := c.Do(method, path, body, map[string]string{"Content-Type": "application/json"})
	return st, b
}

// Upload PATCHes data at offset off of transfer id.
func (c *Client) Upload(id string, off int64, data []byte) (int, []byte, http.Header) {
	c.t.Helper()
	return c.Do(http.MethodPatch, api.PathTransfer+id+"/content", bytes.NewReader(data), map[string]string{
		api.HeaderUploadOffset: strconv.FormatInt(off, 10), "Content-Type": api.ContentTypeChunk})
}

// Register makes an age identity for the client and registers its recipient.
func (c *Client) Register() *age.HybridIdentity {
	c.t.Helper()
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		c.t.Fatal(err)
	}
	if st, b := c.JSON(http.MethodPut, api.PathKeys, api.KeysRequest{Recipients: []string{id.Recipient().String()}}); st != http.StatusOK {
		c.t.Fatalf("register: %d %s", st, b)
	}
	return id
}

// Encrypt age-encrypts plaintext to recipients.
func Encrypt(t testing.TB, plaintext []byte, recips ...age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recips...)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plaintext)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Create signs a manifest for ciphertext (claiming SHA-256 sum, or the real one
// if sum is nil) to recipients to, and posts it. It returns the status and the
// transfer or the error document.
func (c *Client) Create(to []string, labels []string, ciphertext []byte, sum []byte) (int, api.Transfer, api.Error) {
	c.t.Helper()
	if sum == nil {
		s := sha256.Sum256(ciphertext)
		sum = s[:]
	}
	id, _ := x509svid.IDFromCert(c.SVID.Certificates[0])
	sm, err := api.Sign(api.Manifest{Sender: id.String(), Recipients: to, Matter: "HL-2026-0042", Labels: labels,
		FileCount: 1, PlaintextSize: int64(len(ciphertext)), CiphertextSize: int64(len(ciphertext)),
		CiphertextSHA256: hex.EncodeToString(sum)}, c.SVID.PrivateKey, c.SVID.Certificates)
	if err != nil {
		c.t.Fatal(err)
	}
	st, b := c.JSON(http.MethodPost, api.PathTransfers, api.CreateTransferRequest{Manifest: *sm})
	var tr api.Transfer
	var e api.Error
	if st < 300 {
		json.Unmarshal(b, &tr)
	} else {
		json.Unmarshal(b, &e)
	}
	return st, tr, e
}
