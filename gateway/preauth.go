package gateway

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// preauthListener bounds, per source IP address, the TCP connections that have
// not finished their TLS handshake (and sent a first request byte). Past the
// cap a new connection from that address is closed at once, before any TLS
// work: a peer cannot hold the gateway's handshake capacity with stalled or
// half-sent ClientHellos. Each such connection is cut anyway at
// limits.read_header_timeout, which bounds the handshake too.
//
// A connection leaves the pre-auth count when http.Server reports it active,
// idle, hijacked or closed (preauthConnState), or when it is closed.
type preauthListener struct {
	net.Listener
	max     int
	log     *slog.Logger
	refused prometheus.Counter

	mu      sync.Mutex
	pending map[string]int
}

func newPreauthListener(ln net.Listener, max int, log *slog.Logger, reg *prometheus.Registry) *preauthListener {
	return &preauthListener{Listener: ln, max: max, log: log, refused: preauthRefusals(reg).WithLabelValues("tcp"), pending: map[string]int{}}
}

// preauthRefusals is the counter of connections refused by a pre-auth cap, by
// transport, registered once in reg.
func preauthRefusals(reg *prometheus.Registry) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lexgate_preauth_refusals_total",
		Help: "Connections refused at accept because their address had limits.max_preauth_per_addr handshakes pending, by transport.",
	}, []string{"transport"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector.(*prometheus.CounterVec)
		}
		panic(err)
	}
	return c
}

// Accept returns the next connection whose address is under the cap.
func (l *preauthListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := c.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(ip); err == nil {
			ip = h
		}
		l.mu.Lock()
		full := l.pending[ip] >= l.max
		if !full {
			l.pending[ip]++
		}
		l.mu.Unlock()
		if full {
			l.refused.Inc()
			l.log.Debug("connection refused: too many pending handshakes from its address", "remote", ip, "max", l.max)
			c.Close()
			continue
		}
		return &preauthConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *preauthListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending[ip]--; l.pending[ip] <= 0 {
		delete(l.pending, ip)
	}
}

type preauthConn struct {
	net.Conn
	l    *preauthListener
	ip   string
	once sync.Once
}

// done takes the connection out of the pre-auth count, once.
func (c *preauthConn) done() { c.once.Do(func() { c.l.release(c.ip) }) }

func (c *preauthConn) Close() error {
	c.done()
	return c.Conn.Close()
}

// preauthConnState is the http.Server ConnState hook: a connection past its
// handshake (active, idle, hijacked) or closed is no longer pre-auth.
func preauthConnState(c net.Conn, s http.ConnState) {
	if s == http.StateNew {
		return
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if pc, ok := c.(*preauthConn); ok {
		pc.done()
	}
}
