package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
)

// quicPreauth is the QUIC side of limits.max_preauth_per_addr: quic-go asks
// accept (quic.Transport.ConnContext) for every new connection attempt, before
// any TLS work, and the HTTP/3 server reports each connection whose handshake
// completed to handshakeDone (http3.Server.ConnContext; the listener is not an
// early one, so it accepts only completed handshakes). A connection that fails
// or times out in its handshake leaves the count when quic-go cancels its
// context. The address is the one on the Initial packet, which may be spoofed:
// the cap bounds the handshake state one address can pin, and
// limits.read_header_timeout (the handshake idle timeout) bounds how long.
type quicPreauth struct {
	max     int
	log     *slog.Logger
	refused prometheus.Counter

	mu      sync.Mutex
	pending map[string]int
}

type quicPreauthKey struct{}

var errPreauthCap = errors.New("gateway: too many pending QUIC handshakes from this address")

func newQUICPreauth(max int, log *slog.Logger, reg *prometheus.Registry) *quicPreauth {
	return &quicPreauth{max: max, log: log, refused: preauthRefusals(reg).WithLabelValues("quic"), pending: map[string]int{}}
}

// accept is the quic.Transport ConnContext hook.
func (q *quicPreauth) accept(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	ip := ci.RemoteAddr.String()
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	q.mu.Lock()
	full := q.pending[ip] >= q.max
	if !full {
		q.pending[ip]++
	}
	q.mu.Unlock()
	if full {
		q.refused.Inc()
		q.log.Debug("QUIC connection refused: too many pending handshakes from its address", "remote", ip, "max", q.max)
		return ctx, errPreauthCap
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			if q.pending[ip]--; q.pending[ip] <= 0 {
				delete(q.pending, ip)
			}
		})
	}
	context.AfterFunc(ctx, release) // the handshake failed, or the connection ended
	return context.WithValue(ctx, quicPreauthKey{}, release), nil
}

// handshakeDone is the http3.Server ConnContext hook.
func (q *quicPreauth) handshakeDone(ctx context.Context, c *quic.Conn) context.Context {
	if release, ok := c.Context().Value(quicPreauthKey{}).(func()); ok {
		release()
	}
	return ctx
}

// serveQUIC serves HTTP/3 on the gateway's QUIC transport, whose ConnContext
// applies the pre-auth cap.
func (g *Gateway) serveQUIC() error {
	ln, err := g.quicTr.Listen(g.h3.TLSConfig, g.h3.QUICConfig)
	if err != nil {
		return err
	}
	return g.h3.ServeListener(ln)
}
