package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Transport modes of --transport.
const (
	TransportAuto = "auto" // try QUIC, fall back to TCP
	TransportQUIC = "quic" // HTTP/3 only
	TransportTCP  = "tcp"  // HTTP/2 over TLS only
)

// quicHandshakeTimeout bounds the QUIC attempt in auto mode: firewalls that drop UDP
// give no error, only silence.
var quicHandshakeTimeout = 2 * time.Second

// Flow-control windows: large, so that one stream can fill a long fat link
// (32 MiB in flight is 200 MB/s at 150 ms). The initial QUIC windows are a
// bandwidth-delay product already (8 MiB: 50 MB/s at 150 ms), so a transfer does
// not wait for window auto-tuning, which grows them only once per RTT.
const (
	streamWindow        = 32 << 20
	connWindow          = 64 << 20
	initialStreamWindow = 8 << 20
	initialConnWindow   = 16 << 20
)

// GatewayIDError is a handshake failure: the gateway presented a valid SVID for
// another SPIFFE ID than gateway_id.
type GatewayIDError struct {
	Want, Got spiffeid.ID
}

func (e *GatewayIDError) Error() string {
	return fmt.Sprintf("the gateway's certificate is not %s (it is %s): check gateway_id in the configuration", e.Want, e.Got)
}

// GatewayCertError is a handshake failure: the gateway's certificate is not a valid
// X.509-SVID of a trust domain in our bundles.
type GatewayCertError struct {
	Err error
	// Reason, when set, is the likely cause in words ("the gateway's
	// certificate expired on …").
	Reason string
}

func (e *GatewayCertError) Error() string {
	if e.Reason != "" {
		return e.Reason + ": " + e.Err.Error()
	}
	return "the gateway's certificate does not verify against our trust bundles: " + e.Err.Error()
}

func (e *GatewayCertError) Unwrap() error { return e.Err }

// RefusedCertError is a handshake failure: the gateway refused our certificate.
type RefusedCertError struct {
	Err error
}

func (e *RefusedCertError) Error() string {
	return "the gateway refused our certificate (is svid_cert current, and from a trust domain the gateway federates with?): " + e.Err.Error()
}

func (e *RefusedCertError) Unwrap() error { return e.Err }

// tlsConfig returns the mTLS client configuration: TLS 1.3, our SVID, the gateway's
// SVID verified against bundles and authorized as gatewayID, errors typed.
func tlsConfig(svid x509svid.Source, bundles x509bundle.Source, gatewayID spiffeid.ID) *tls.Config {
	authorize := func(got spiffeid.ID, _ [][]*x509.Certificate) error {
		if got != gatewayID {
			return &GatewayIDError{Want: gatewayID, Got: got}
		}
		return nil
	}
	c := tlsconfig.MTLSClientConfig(svid, bundles, authorize)
	c.MinVersion = tls.VersionTLS13
	verify := c.VerifyPeerCertificate
	c.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		err := verify(raw, chains)
		var idErr *GatewayIDError
		if err != nil && !errors.As(err, &idErr) {
			ce := &GatewayCertError{Err: err}
			if why := peerValidity(raw, time.Now()); why != nil {
				ce.Reason = why.Error()
			}
			return ce
		}
		return err
	}
	return c
}

// handshakeError returns err as one of the typed handshake errors when it is one,
// else nil.
func handshakeError(err error) error {
	var (
		idErr   *GatewayIDError
		certErr *GatewayCertError
		refused *RefusedCertError
		opErr   *net.OpError
		qErr    *quic.TransportError
	)
	switch {
	case errors.As(err, &idErr):
		return idErr
	case errors.As(err, &certErr):
		return certErr
	case errors.As(err, &refused):
		return refused
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		return &RefusedCertError{Err: opErr.Err}
	case errors.As(err, &qErr) && qErr.Remote && qErr.ErrorCode >= 0x100 && qErr.ErrorCode < 0x200:
		return &RefusedCertError{Err: qErr}
	case err != nil && strings.Contains(err.Error(), "remote error: tls:"):
		return &RefusedCertError{Err: err}
	}
	return nil
}

// roundTripper is an http.RoundTripper that can be closed, and whose idle
// connections can be dropped (CloseIdle) so the next request dials afresh.
type roundTripper interface {
	http.RoundTripper
	io.Closer
	CloseIdle()
}

// connect chooses the transport to addr for mode and says which and why on verbose
// (if not nil).
func connect(ctx context.Context, addr, mode string, tc *tls.Config, replicated bool, verbose io.Writer) (roundTripper, string, error) {
	logf := func(format string, args ...any) {
		if verbose != nil {
			fmt.Fprintf(verbose, format+"\n", args...)
		}
	}
	switch mode {
	case TransportTCP:
		logf("transport: tcp (HTTP/2) to %s — --transport tcp; %s", addr, tcpTuning())
		return newTCPTransport(tc), TransportTCP, nil
	case TransportQUIC:
		rt, err := newQUICTransport(ctx, addr, tc, 0, replicated)
		if err != nil {
			if herr := handshakeError(err); herr != nil {
				return nil, "", herr
			}
			return nil, "", fmt.Errorf("QUIC to %s: %w (try --transport tcp)", addr, explain(addr, err))
		}
		logf("transport: quic (HTTP/3) to %s", addr)
		return rt, TransportQUIC, nil
	case TransportAuto, "":
		rt, err := newQUICTransport(ctx, addr, tc, quicHandshakeTimeout, replicated)
		if err == nil {
			logf("transport: quic (HTTP/3) to %s", addr)
			return rt, TransportQUIC, nil
		}
		if herr := handshakeError(err); herr != nil {
			return nil, "", herr
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		logf("transport: tcp (HTTP/2) to %s — QUIC failed: %v; %s", addr, err, tcpTuning())
		return newTCPTransport(tc), TransportTCP, nil
	default:
		return nil, "", usagef("--transport %q: want auto, quic or tcp", mode)
	}
}

func newTCPTransport(tc *tls.Config) roundTripper {
	c := tc.Clone()
	c.NextProtos = []string{"h2"}
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         tcpDialer().DialContext,
		TLSClientConfig:     c,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		IdleConnTimeout:     90 * time.Second,
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerConnection: connWindow,
			MaxReceiveBufferPerStream:     streamWindow,
		},
	}
	return closeIdle{t}
}

// newBulkTransport is HTTP/1.1 over TLS for ciphertext bodies: a body is sent as
// plain TLS records, without HTTP/2's framing and flow control, which on a fast
// link cost more CPU than the encryption itself. Large socket buffers keep a
// long fat link full.
func newBulkTransport(tc *tls.Config) roundTripper {
	c := tc.Clone()
	c.NextProtos = []string{"http/1.1"}
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         tcpDialer().DialContext,
		TLSClientConfig:     c,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // never h2
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 64, // parallel ranges reuse their warmed-up connections
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      256 << 10,
		DisableCompression:  true,
	}
	return closeIdle{t}
}

// tcpDialer dials TCP tuned for long lossy paths (see tcpControl).
func tcpDialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: tcpControl}
}

// closeIdle adapts an http.Transport to roundTripper.
type closeIdle struct{ *http.Transport }

func (c closeIdle) Close() error { c.CloseIdleConnections(); return nil }

func (c closeIdle) CloseIdle() { c.CloseIdleConnections() }

// With several replicas to move to (replicas.go), a QUIC connection that
// hears nothing from its replica for replicaIdleTimeout is given up, and
// lex moves on; keep-alives every replicaKeepAlive keep a live but quiet
// connection open. A lone gateway is given the minute to come back.
const (
	replicaIdleTimeout = 5 * time.Second
	replicaKeepAlive   = 1500 * time.Millisecond
)

// newQUICTransport dials addr over QUIC (within timeout, if not zero) and returns an
// HTTP/3 transport whose first connection is that one. replicated: addr is
// one of several replicas (see replicaIdleTimeout).
func newQUICTransport(ctx context.Context, addr string, tc *tls.Config, timeout time.Duration, replicated bool) (roundTripper, error) {
	c := tc.Clone()
	c.NextProtos = []string{http3.NextProtoH3}
	qc := &quic.Config{
		HandshakeIdleTimeout:           quicHandshakeTimeout,
		MaxIdleTimeout:                 60 * time.Second,
		KeepAlivePeriod:                15 * time.Second,
		InitialStreamReceiveWindow:     initialStreamWindow,
		MaxStreamReceiveWindow:         streamWindow,
		InitialConnectionReceiveWindow: initialConnWindow,
		MaxConnectionReceiveWindow:     connWindow,
	}
	if replicated {
		qc.MaxIdleTimeout, qc.KeepAlivePeriod = replicaIdleTimeout, replicaKeepAlive
	}
	if timeout > 0 {
		qc.HandshakeIdleTimeout = timeout
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	} else {
		qc.HandshakeIdleTimeout = 10 * time.Second
	}
	first, err := quic.DialAddr(ctx, addr, c, qc)
	if err != nil {
		return nil, err
	}
	d := &quicDialer{first: first}
	return &quicTransport{&http3.Transport{TLSClientConfig: c, QUICConfig: qc, Dial: d.dial}, d}, nil
}

// quicTransport is an HTTP/3 transport that also closes an unused probe connection.
type quicTransport struct {
	*http3.Transport
	d *quicDialer
}

func (t *quicTransport) Close() error {
	t.d.close()
	return t.Transport.Close()
}

// CloseIdle drops the probe connection and the idle pooled ones.
func (t *quicTransport) CloseIdle() {
	t.d.close()
	t.CloseIdleConnections()
}

// quicDialer hands out the probe connection once, then dials new ones.
type quicDialer struct {
	mu    sync.Mutex
	first *quic.Conn
}

func (d *quicDialer) dial(ctx context.Context, addr string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
	d.mu.Lock()
	first := d.first
	d.first = nil
	d.mu.Unlock()
	if first != nil && first.Context().Err() == nil {
		return first, nil
	}
	return quic.DialAddrEarly(ctx, addr, tc, qc)
}

func (d *quicDialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.first != nil {
		_ = d.first.CloseWithError(0, "")
		d.first = nil
	}
}
