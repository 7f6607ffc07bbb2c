package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// The bulk path: how ciphertext moves, apart from the control requests.
//
// quic-go's congestion controller is NewReno, fixed, shared by every stream of a
// connection: on a long path with random loss (0.5 % at 150 ms, ordinary between
// Frankfurt and Manila) it falls to a few hundred KB/s, as the Mathis formula
// predicts, twenty times slower than the sftp it replaces. TCP with BBR (asked
// for by tcpControl) keeps its rate through random loss, and several TCP
// connections each bring their own window. So with --transport auto the
// ciphertext goes over HTTP/1.1 on TCP whatever carried the control requests,
// and moves to QUIC only if TCP cannot connect; --transport quic keeps
// everything on QUIC and --transport tcp everything on TCP.

// bulkTransport returns the round tripper for ciphertext under mode, given the
// control transport rt named name, or nil when the control transport carries it
// too. It says on verbose (if not nil) what it chose and why.
func bulkTransport(mode, name string, tc *tls.Config, rt roundTripper, verbose io.Writer) roundTripper {
	logf := func(format string, args ...any) {
		if verbose != nil {
			fmt.Fprintf(verbose, format+"\n", args...)
		}
	}
	switch {
	case name == TransportTCP:
		logf("bulk: tcp (HTTP/1.1), one connection per parallel range")
		return newBulkTransport(tc)
	case mode == TransportAuto || mode == "":
		logf("bulk: tcp (HTTP/1.1; %s), one connection per parallel range — QUIC's NewReno collapses under random loss on long links; QUIC if TCP cannot connect", tcpTuning())
		return &fallbackRT{tcp: newBulkTransport(tc), quic: rt, logf: logf}
	}
	logf("bulk: quic (HTTP/3), one stream per parallel range — --transport %s", mode)
	return nil
}

// fallbackRT sends over TCP until a TCP connection cannot be made, then over
// QUIC for the rest of the run. A request whose body may have been read in part
// fails; the caller resumes it by offset, over QUIC.
type fallbackRT struct {
	tcp, quic roundTripper
	useQUIC   atomic.Bool
	logf      func(string, ...any)
}

func (f *fallbackRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.useQUIC.Load() {
		return f.quic.RoundTrip(req)
	}
	resp, err := f.tcp.RoundTrip(req)
	var op *net.OpError
	if err == nil || req.Context().Err() != nil || !errors.As(err, &op) || op.Op != "dial" {
		return resp, err
	}
	if f.useQUIC.CompareAndSwap(false, true) {
		f.logf("bulk: tcp cannot connect (%v); moving to quic", err)
	}
	if req.Body == nil || req.Body == http.NoBody {
		return f.quic.RoundTrip(req)
	}
	return nil, err
}

// name is the transport the next request goes over.
func (f *fallbackRT) name() string {
	if f.useQUIC.Load() {
		return TransportQUIC
	}
	return TransportTCP
}

// Close closes the TCP side; the QUIC side is the control transport, closed
// with the client.
func (f *fallbackRT) Close() error { return f.tcp.Close() }

// BulkTransport is the transport ciphertext goes over now: TransportTCP or
// TransportQUIC.
func (c *Client) BulkTransport() string {
	switch rt := c.bulkRT.(type) {
	case nil:
		return c.transport
	case *fallbackRT:
		return rt.name()
	}
	return TransportTCP
}
