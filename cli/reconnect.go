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
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/lexgate/lexgate/gateway/api"
)

// DefaultReconnect is how long lex keeps reconnecting to a gateway it has
// reached once and then lost (a restart, a deploy, a dropped link) before it
// gives up; --reconnect changes it. A send given up is resumed by running the
// same command again.
const DefaultReconnect = time.Minute

// Backoff between reconnection attempts: it starts short, so a gateway that
// restarts in a second costs about a second, and doubles up to a cap, so a
// long outage costs few attempts.
const (
	firstBackoff = 200 * time.Millisecond
	maxBackoff   = 3 * time.Second
)

// retrier decides, after each failed attempt of one operation, whether to try
// again, and waits before it does. One outage (consecutive failures) may last
// the client's reconnect window; a success starts a new one.
type retrier struct {
	c     *Client
	what  string    // what is retried, for -v, when err does not say it
	since time.Time // the first failure of the current outage
	n     int       // failures in the current outage
}

// again reports whether to try again after err, having waited the backoff and
// dropped the client's idle connections (after a gateway restart they lead
// nowhere). It is false for errors a retry cannot mend: the gateway's answers
// (except 503), refused handshakes, a cancelled ctx, or a gateway never reached.
func (r *retrier) again(ctx context.Context, err error) bool {
	if !r.c.transient(ctx, err) {
		return false
	}
	if r.since.IsZero() {
		r.since = time.Now()
	}
	if time.Since(r.since) < r.c.reconnect && r.c.failover(ctx, err) {
		// Another replica answers: retry there at once, within the same
		// outage's window.
		return true
	}
	if time.Since(r.since) >= r.c.reconnect {
		return false
	}
	d := min(firstBackoff<<min(r.n, 10), maxBackoff)
	r.n++
	what := ""
	if r.what != "" {
		what = r.what + ": "
	}
	r.c.verbosef("%s%v; reconnecting and retrying in %v (attempt %d; giving up %v after the first failure)", what, err, d, r.n, r.c.reconnect)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return false
	}
	r.c.resetConns()
	return true
}

// ok ends the current outage.
func (r *retrier) ok() { r.since, r.n = time.Time{}, 0 }

// transient reports whether err may go away by itself: a network error once
// the gateway has answered this client before, or the gateway's 503.
func (c *Client) transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || c.reconnect <= 0 {
		return false
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code == api.CodeUnavailable
	}
	if handshakeError(err) != nil {
		return false
	}
	var ue *GatewayUnreachableError
	if errors.As(err, &ue) && ue.permanent() {
		return false
	}
	return c.reached.Load()
}

// resetConns closes the idle connections of both transports, so the next
// request dials afresh: a QUIC connection to a gateway that restarted would
// otherwise be used until its idle timeout.
func (c *Client) resetConns() {
	ep := c.ep.Load()
	ep.rt.CloseIdle()
	if ep.bulkRT != nil {
		ep.bulkRT.CloseIdle()
	}
}

// replayable reports whether req can be sent again: it has no body, or one
// net/http can make anew.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// again returns req ready to be sent once more.
func again(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = body
	return r, nil
}

// GatewayUnreachableError is a failure to talk to the gateway at all, with the
// likely cause in words a user can act on.
type GatewayUnreachableError struct {
	Addr  string // the gateway setting, host:port
	Cause string // the likely cause and what to check
	Err   error  // what the network said
}

func (e *GatewayUnreachableError) Error() string {
	return fmt.Sprintf("%s (%v)", e.Cause, e.Err)
}

func (e *GatewayUnreachableError) Unwrap() error { return e.Err }

// permanent reports whether waiting cannot help: a name that does not exist,
// a port that speaks another protocol, an expired certificate.
func (e *GatewayUnreachableError) permanent() bool {
	var de *net.DNSError
	return (errors.As(e.Err, &de) && de.IsNotFound) || strings.Contains(e.Cause, "plain HTTP") || strings.Contains(e.Cause, "expired")
}

// explain turns a network error talking to addr into a
// *GatewayUnreachableError naming the likely cause, or returns err unchanged
// when it has nothing to add.
func explain(addr string, err error) error {
	var (
		ue   *GatewayUnreachableError
		de   *net.DNSError
		rhe  tls.RecordHeaderError
		idle *quic.IdleTimeoutError
		hs   *quic.HandshakeTimeoutError
		ne   net.Error
	)
	host, _, _ := net.SplitHostPort(addr)
	var cause string
	switch {
	case err == nil || errors.As(err, &ue) || handshakeError(err) != nil || errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &de) && de.IsNotFound:
		cause = fmt.Sprintf("the name %q is not found: check the gateway setting (%s) in your configuration", host, addr)
	case errors.As(err, &de):
		cause = fmt.Sprintf("the name %q could not be resolved: check your network and DNS", host)
	case errors.Is(err, syscall.ECONNREFUSED):
		cause = fmt.Sprintf("no gateway is listening at %s: is lexgate running there, and is that its listen address?", addr)
	case errors.As(err, &rhe) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		cause = fmt.Sprintf("%s answers plain HTTP, not TLS: that looks like the gateway's admin port (admin_listen); set gateway to its API address (listen)", addr)
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		cause = fmt.Sprintf("the connection to %s was cut: the gateway may have restarted, or a proxy or firewall closed it", addr)
	case errors.As(err, &idle) || errors.As(err, &hs) || (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		cause = fmt.Sprintf("no answer from %s in time: the gateway may be down or restarting, or a firewall drops the traffic", addr)
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		cause = fmt.Sprintf("%s cannot be reached from here: check the address and your network", addr)
	default:
		return err
	}
	return &GatewayUnreachableError{Addr: addr, Cause: cause, Err: err}
}

// checkValidity refuses an SVID outside its validity period before it is
// sent: the gateway would only say it refused the certificate.
func checkValidity(leaf *x509.Certificate, file string, now time.Time) error {
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("your SVID (svid_cert %s) expired on %s: get a new one (from SPIRE, or lexgate certs issue)", file, leaf.NotAfter.UTC().Format(time.DateTime+" MST"))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("your SVID (svid_cert %s) is not valid before %s: check this machine's clock", file, leaf.NotBefore.UTC().Format(time.DateTime+" MST"))
	}
	return nil
}

// peerValidity reports a gateway certificate outside its validity period,
// which says more than the verifier's error.
func peerValidity(raw [][]byte, now time.Time) error {
	if len(raw) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return nil
	}
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("the gateway's certificate expired on %s: its operator must renew it", leaf.NotAfter.UTC().Format(time.DateTime+" MST"))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("the gateway's certificate is not valid before %s: check this machine's clock", leaf.NotBefore.UTC().Format(time.DateTime+" MST"))
	}
	return nil
}
