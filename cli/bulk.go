package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The bulk path: how ciphertext moves, apart from the control requests.
//
// quic-go's congestion controller is NewReno, fixed, shared by every stream of a
// connection: on a long path with random loss (0.5 % at 150 ms, ordinary between
// Frankfurt and Manila) it falls to a few hundred KB/s, as the Mathis formula
// predicts, twenty times slower than the sftp it replaces. TCP with BBR (asked
// for by tcpControl) keeps its rate through random loss, and several TCP
// connections each bring their own window. So with --transport auto the
// ciphertext goes over HTTP/1.1 on TCP whatever carried the control requests;
// it moves to QUIC if TCP cannot connect, and between the two when the one in
// use collapses while the transfer runs (see goodput.go); --transport quic
// keeps everything on QUIC and --transport tcp everything on TCP.

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
		tcp := newBulkTransport(tc)
		a := newAdaptiveRT(tcp, rt, logf)
		t := tcp.(closeIdle).Transport
		t.DialContext = a.conns.track(t.DialContext)
		return a
	}
	logf("bulk: quic (HTTP/3), one stream per parallel range — --transport %s", mode)
	return nil
}

// adaptiveRT carries the bulk over TCP or QUIC and moves it between them:
// to QUIC when a TCP connection cannot be made (for the rest of the run), and
// either way when the path in use collapses (see goodput.go). A request whose
// body may have been read in part fails when its path is left; the caller
// resumes it by offset over the other one.
type adaptiveRT struct {
	paths  [2]bulkPath // pathTCP, pathQUIC
	active atomic.Int32
	// tcpWorked is set once a request went through over TCP: a refused
	// connection after that is a gateway restarting, not a firewall.
	tcpWorked atomic.Bool
	logf      func(string, ...any)

	conns connSet // the TCP path's connections, reset when the bulk leaves it

	mu       sync.Mutex
	calls    map[*bulkCall]struct{}
	moves    int     // moves for collapse, at most maxMoves
	left     float64 // the goodput of the path last left, bytes/s
	watching bool
	closed   bool
	stop     chan struct{}
}

// The paths of an adaptiveRT.
const (
	pathTCP  = 0
	pathQUIC = 1
)

// bulkPath is one transport the bulk can take, with its meter.
type bulkPath struct {
	name string
	rt   roundTripper
	m    meter
}

// bulkCall is a request in flight, stopped with a *pathMoveError when the
// bulk leaves its path.
type bulkCall struct {
	path   int
	cancel context.CancelCauseFunc
}

// pathMoveError is why a request in flight was stopped.
type pathMoveError struct{ from, to, why string }

func (e *pathMoveError) Error() string {
	return fmt.Sprintf("the bulk moved from %s to %s (%s); resume by offset", e.from, e.to, e.why)
}

func newAdaptiveRT(tcp, quic roundTripper, logf func(string, ...any)) *adaptiveRT {
	a := &adaptiveRT{logf: logf, calls: map[*bulkCall]struct{}{}, stop: make(chan struct{})}
	a.paths[pathTCP] = bulkPath{name: TransportTCP, rt: tcp}
	a.paths[pathQUIC] = bulkPath{name: TransportQUIC, rt: quic}
	return a
}

func (a *adaptiveRT) RoundTrip(req *http.Request) (*http.Response, error) {
	i := int(a.active.Load())
	resp, err := a.roundTrip(i, req)
	if i == pathTCP && err == nil {
		a.tcpWorked.Store(true)
	}
	var op *net.OpError
	if i != pathTCP || err == nil || req.Context().Err() != nil || !errors.As(err, &op) || op.Op != "dial" {
		return resp, err
	}
	if a.tcpWorked.Load() && errors.Is(err, syscall.ECONNREFUSED) {
		return resp, err // TCP worked in this run: the gateway is restarting, not firewalled
	}
	if a.active.CompareAndSwap(pathTCP, pathQUIC) {
		a.logf("bulk: tcp cannot connect (%v); moving to quic", err)
	}
	if req.Body == nil || req.Body == http.NoBody {
		return a.roundTrip(pathQUIC, req)
	}
	return nil, err
}

// roundTrip sends req over path i, counted by its meter and stoppable by a move.
func (a *adaptiveRT) roundTrip(i int, req *http.Request) (*http.Response, error) {
	p := &a.paths[i]
	ctx, cancel := context.WithCancelCause(req.Context())
	call := &bulkCall{path: i, cancel: cancel}
	a.register(call)
	p.m.inflight.Add(1)
	finish := func() {
		p.m.inflight.Add(-1)
		a.unregister(call)
		cancel(nil)
	}
	req = req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = newCountedBody(req.Body, &p.m, false, func() {})
		req.GetBody = nil // a rewound body would not be counted
	}
	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		finish()
		var moved *pathMoveError
		if errors.As(context.Cause(ctx), &moved) && !errors.Is(err, moved) {
			return nil, fmt.Errorf("%w: %w", moved, err)
		}
		return nil, err
	}
	resp.Body = newCountedBody(resp.Body, &p.m, true, finish)
	return resp, nil
}

// register notes a call in flight and starts the watcher with the first.
func (a *adaptiveRT) register(c *bulkCall) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls[c] = struct{}{}
	if !a.watching && !a.closed {
		a.watching = true
		go a.watch()
	}
}

func (a *adaptiveRT) unregister(c *bulkCall) {
	a.mu.Lock()
	delete(a.calls, c)
	a.mu.Unlock()
}

// watch samples the active path every goodputTick until Close and leaves it
// when it collapses.
func (a *adaptiveRT) watch() {
	t := time.NewTicker(goodputTick)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		a.mu.Lock()
		i := int(a.active.Load())
		m := &a.paths[i].m
		rate, full, busy := m.tick()
		var why string
		if busy && a.moves < maxMoves {
			why = moveReason(rate, full, m.peak, a.left, a.paths[1-i].name)
		}
		if why == "" {
			a.mu.Unlock()
			continue
		}
		a.moves++
		a.left = rate
		from, to := &a.paths[i], &a.paths[1-i]
		if h := a.conns.health(); i == pathTCP && h != "" {
			why += "; " + h
		}
		a.active.Store(int32(1 - i))
		to.m.restart()
		// Said before the requests are stopped, so that -v shows the move
		// ahead of what each stopped request reports about it.
		a.logf("bulk: %s %s; moving to %s, resuming at the gateway's offset", from.name, why, to.name)
		cause := &pathMoveError{from: from.name, to: to.name, why: why}
		for c := range a.calls {
			if c.path == i {
				c.cancel(cause)
			}
		}
		a.mu.Unlock()
		if i == pathTCP {
			a.conns.reset()
		}
	}
}

// moveReason says why the bulk should leave a path whose window rate is rate
// (full when the window spans goodputWindow busy ticks), given the best rate
// the path reached and the rate the other path, named other, still gave when
// the bulk left it (0 before any move); "" means stay.
func moveReason(rate float64, full bool, peak, left float64, other string) string {
	switch {
	case isCollapse(rate, full, peak):
		return fmt.Sprintf("goodput fell to %s over the last %v, from a peak of %s",
			rateString(rate), goodputWindow*goodputTick, rateString(peak))
	case full && rate < left:
		// The move made things worse: go back to what the other path
		// still gave when it was left.
		return fmt.Sprintf("goodput is %s over the last %v, below the %s %s still gave",
			rateString(rate), goodputWindow*goodputTick, rateString(left), other)
	}
	return ""
}

// connSet tracks TCP connections so that leaving a path can reset them: a
// closed socket would otherwise go on sending what it had buffered (megabytes,
// with the large send buffers of a long link) through the very middlebox that
// throttles it, and the gateway would go on receiving an upload lex gave up.
type connSet struct {
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// track wraps dial so that the connections it makes join the set.
func (s *connSet) track(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, set: s}
		s.mu.Lock()
		if s.conns == nil {
			s.conns = map[*trackedConn]struct{}{}
		}
		s.conns[tc] = struct{}{}
		s.mu.Unlock()
		return tc, nil
	}
}

// health sums what the kernel reports for the set's connections: how many,
// the share of segments retransmitted (the loss the path shows TCP) and the
// largest smoothed RTT. It is empty when there is nothing to say.
func (s *connSet) health() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sent, retrans uint64
	var rtt time.Duration
	n := 0
	for c := range s.conns {
		if cs, cr, crtt, ok := tcpStats(c.Conn); ok {
			sent, retrans, rtt, n = sent+cs, retrans+cr, max(rtt, crtt), n+1
		}
	}
	if n == 0 || sent == 0 {
		return ""
	}
	return fmt.Sprintf("%d connection(s), rtt %v, %.2f %% of segments retransmitted", n, rtt.Round(time.Millisecond), 100*float64(retrans)/float64(sent))
}

// reset closes every connection of the set with a TCP reset, dropping what
// its socket still had to send.
func (s *connSet) reset() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		if t, ok := c.Conn.(*net.TCPConn); ok {
			t.SetLinger(0)
		}
		c.Conn.Close()
	}
}

// trackedConn leaves its set when closed.
type trackedConn struct {
	net.Conn
	set *connSet
}

func (c *trackedConn) Close() error {
	c.set.mu.Lock()
	delete(c.set.conns, c)
	c.set.mu.Unlock()
	return c.Conn.Close()
}

// name is the transport the next request goes over.
func (a *adaptiveRT) name() string { return a.paths[a.active.Load()].name }

// Close stops the watcher and closes the TCP side; the QUIC side is the
// control transport, closed with the client.
func (a *adaptiveRT) Close() error {
	if h := a.conns.health(); h != "" && a.active.Load() == pathTCP && a.paths[pathTCP].m.bytes.Load() > 0 {
		a.logf("bulk: tcp carried %d bytes; %s", a.paths[pathTCP].m.bytes.Load(), h)
	}
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.stop)
	}
	a.mu.Unlock()
	return a.paths[pathTCP].rt.Close()
}

// CloseIdle drops the idle connections of the TCP path (the QUIC path's
// transport is the control one, whose owner drops them).
func (a *adaptiveRT) CloseIdle() { a.paths[pathTCP].rt.CloseIdle() }

// BulkTransport is the transport ciphertext goes over now: TransportTCP or
// TransportQUIC.
func (c *Client) BulkTransport() string {
	ep := c.ep.Load()
	switch rt := ep.bulkRT.(type) {
	case nil:
		return ep.transport
	case *adaptiveRT:
		return rt.name()
	}
	return TransportTCP
}
