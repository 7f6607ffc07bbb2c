package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"
)

// connectAny connects to the first of addrs — replicas of one gateway — that
// answers, and returns its address. An address that cannot be reached is
// skipped with a note on verbose; a refused certificate is returned at once,
// since every replica would refuse it. A replica lost later is left for the
// next one by failover, in the middle of a send or receive.
func connectAny(ctx context.Context, addrs []string, mode string, tc *tls.Config, verbose io.Writer) (string, roundTripper, string, error) {
	var lastErr error
	for i, addr := range addrs {
		rt, name, err := connect(ctx, addr, mode, tc, len(addrs) > 1, verbose)
		if err == nil && name == TransportTCP && len(addrs) > 1 {
			// The TCP transport dials lazily: make sure this replica is up
			// before settling on it.
			if err = probeTCP(ctx, addr); err != nil {
				rt.Close()
			}
		}
		if err == nil {
			return addr, rt, name, nil
		}
		if handshakeError(err) != nil || ctx.Err() != nil || i == len(addrs)-1 {
			return "", nil, "", err
		}
		lastErr = err
		if verbose != nil {
			fmt.Fprintf(verbose, "gateway %s unreachable (%v); trying %s\n", addr, err, addrs[i+1])
		}
	}
	return "", nil, "", lastErr
}

// probeTCP checks that addr accepts TCP connections.
func probeTCP(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway %s: %w", addr, err)
	}
	return conn.Close()
}

// Failover mid-command (issue 19). A client given several addresses talks
// to one replica at a time, its endpoint. When a request to it fails on the
// network (a replica killed, its machine gone) the retrier asks failover to
// move: the next address that answers becomes the endpoint, with transports
// of its own, and the operation resumes there at once — an upload from the
// durable offset the shared store holds, which the next request learns —
// without waiting out the reconnect window on a replica that is gone. The
// gateway's own answers (a refusal, a 503) are not moved on: every replica
// shares the store and would answer alike.

// endpoint is the replica a client talks to and its transports.
type endpoint struct {
	addr      string
	rt        roundTripper // control requests
	bulkRT    roundTripper // ciphertext; nil: rt carries it
	transport string       // rt's: TransportQUIC or TransportTCP
}

func (e *endpoint) close() error {
	if e.bulkRT != nil {
		e.bulkRT.Close()
	}
	return e.rt.Close()
}

// failoverRT sends each request to the client's current endpoint, whatever
// replica its URL was made for.
type failoverRT struct {
	c    *Client
	bulk bool
}

func (f failoverRT) RoundTrip(req *http.Request) (*http.Response, error) {
	ep := f.c.ep.Load()
	rt := http.RoundTripper(ep.rt)
	if f.bulk && ep.bulkRT != nil {
		rt = ep.bulkRT
	}
	if req.URL.Host != ep.addr {
		r := req.Clone(req.Context())
		r.URL.Host, r.Host = ep.addr, ""
		req = r
	}
	return rt.RoundTrip(req)
}

// replicaError is a network failure talking to the replica at addr.
type replicaError struct {
	addr string
	err  error
}

func (e *replicaError) Error() string { return e.err.Error() }
func (e *replicaError) Unwrap() error { return e.err }

// failover moves the client off the replica err failed on to the next
// address that answers, and reports whether the client is now on another
// replica (it may have been moved already by a concurrent request).
func (c *Client) failover(ctx context.Context, err error) bool {
	var re *replicaError
	if len(c.addrs) < 2 || !errors.As(err, &re) || ctx.Err() != nil {
		return false
	}
	c.epMu.Lock()
	defer c.epMu.Unlock()
	cur := c.ep.Load()
	if cur.addr != re.addr {
		return true // a concurrent request moved already
	}
	i := slices.Index(c.addrs, cur.addr)
	for k := 1; k < len(c.addrs); k++ {
		next := c.addrs[(i+k)%len(c.addrs)]
		start := time.Now()
		rt, name, err := connect(ctx, next, c.mode, c.tc, true, nil)
		if err == nil && name == TransportTCP {
			if err = probeTCP(ctx, next); err != nil {
				rt.Close()
			}
		}
		if err != nil {
			c.verbosef("replica %s: %v", next, err)
			if handshakeError(err) != nil || ctx.Err() != nil {
				return false
			}
			continue
		}
		c.ep.Store(&endpoint{addr: next, rt: rt, transport: name, bulkRT: bulkTransport(c.mode, name, c.tc, rt, nil)})
		cur.close() // requests still on it fail, and follow
		c.verbosef("gateway %s lost (%v); moved to %s over %s in %v", cur.addr, re.err, next, name, time.Since(start).Round(time.Millisecond))
		return true
	}
	return false
}
