package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/identity"
	"github.com/lexgate/lexgate/gateway/transfer"
)

// Revocation at run time (issue 16). The identity source's deny list refuses
// new handshakes; liveConns knows which live connection belongs to which
// SPIFFE ID, so a revocation can close them: HTTPS (HTTP/1.1 and HTTP/2)
// connections are registered when they become active (after their
// handshake), HTTP/3 connections when the QUIC handshake completes, SFTP
// sessions by the SFTP front itself.

// liveConns maps SPIFFE IDs to their live connections.
type liveConns struct {
	revoked func(spiffeid.ID) bool

	mu   sync.Mutex
	byID map[spiffeid.ID]map[io.Closer]struct{}
	ids  map[io.Closer]spiffeid.ID
}

func newLiveConns(revoked func(spiffeid.ID) bool) *liveConns {
	return &liveConns{revoked: revoked, byID: map[spiffeid.ID]map[io.Closer]struct{}{}, ids: map[io.Closer]spiffeid.ID{}}
}

// add registers c as a connection of id. A connection of an identity revoked
// since its handshake is closed at once, so no revocation is missed between
// a handshake and its registration.
func (l *liveConns) add(id spiffeid.ID, c io.Closer) {
	l.mu.Lock()
	if _, ok := l.ids[c]; !ok {
		l.ids[c] = id
		if l.byID[id] == nil {
			l.byID[id] = map[io.Closer]struct{}{}
		}
		l.byID[id][c] = struct{}{}
	}
	l.mu.Unlock()
	if l.revoked(id) {
		c.Close()
	}
}

func (l *liveConns) remove(c io.Closer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id, ok := l.ids[c]
	if !ok {
		return
	}
	delete(l.ids, c)
	delete(l.byID[id], c)
	if len(l.byID[id]) == 0 {
		delete(l.byID, id)
	}
}

// closeID closes every live connection of id and returns how many.
func (l *liveConns) closeID(id spiffeid.ID) int {
	l.mu.Lock()
	cs := make([]io.Closer, 0, len(l.byID[id]))
	for c := range l.byID[id] {
		cs = append(cs, c)
	}
	l.mu.Unlock()
	for _, c := range cs {
		c.Close()
		l.remove(c)
	}
	return len(cs)
}

// tcpConn closes a TLS connection's socket without the close_notify alert,
// which could wait behind a stalled write.
type tcpConn struct{ c *tls.Conn }

func (t tcpConn) Close() error { return t.c.NetConn().Close() }

// connState is the HTTPS server's ConnState hook: the pre-auth accounting,
// then the live connection registry.
func (g *Gateway) connState(c net.Conn, s http.ConnState) {
	preauthConnState(c, s)
	tc, ok := c.(*tls.Conn)
	if !ok {
		return
	}
	switch s {
	case http.StateActive:
		cs := tc.ConnectionState()
		if id, err := identity.PeerID(&cs); err == nil {
			g.live.add(id, tcpConn{tc})
		}
	case http.StateClosed, http.StateHijacked:
		g.live.remove(tcpConn{tc})
	}
}

// quicConn closes a QUIC connection with an application error saying why.
type quicConn struct{ c *quic.Conn }

// quicRevoked is the HTTP/3 application error code of a connection closed
// because its identity was revoked (H3_REQUEST_REJECTED would invite a retry).
const quicRevoked = 0x10c // H3_REQUEST_CANCELLED

func (q quicConn) Close() error { return q.c.CloseWithError(quicRevoked, "SPIFFE ID revoked") }

// trackQUIC wraps the HTTP/3 server's ConnContext hook: a connection whose
// handshake completed is registered until it ends.
func (g *Gateway) trackQUIC(next func(context.Context, *quic.Conn) context.Context) func(context.Context, *quic.Conn) context.Context {
	return func(ctx context.Context, c *quic.Conn) context.Context {
		ctx = next(ctx, c)
		cs := c.ConnectionState().TLS
		id, err := identity.PeerID(&cs)
		if err != nil {
			return ctx
		}
		qc := quicConn{c}
		g.live.add(id, qc)
		go func() {
			<-c.Context().Done()
			g.live.remove(qc)
		}()
		return ctx
	}
}

// revoker is the gateway's [transfer.Revoker].
type revoker struct{ g *Gateway }

var _ transfer.Revoker = revoker{}

func (r revoker) Revoke(ctx context.Context, id spiffeid.ID) int {
	r.g.id.Revoke(id)
	n := r.g.live.closeID(id)
	if r.g.sftp != nil {
		n += r.g.sftp.CloseIdentity(id)
	}
	return n
}

func (r revoker) Unrevoke(id spiffeid.ID) error {
	_, err := r.g.id.Unrevoke(id)
	return err
}

func (r revoker) ConfigRevocations() []spiffeid.ID { return r.g.id.ConfigRevocations() }

// loadRevocations puts the store's run-time revocations on the deny list,
// beside the config file's, before the gateway serves.
func (g *Gateway) loadRevocations(ctx context.Context) error {
	rs, err := g.store.Revocations(ctx)
	if err != nil {
		return fmt.Errorf("gateway: revocations: %w", err)
	}
	for _, r := range rs {
		id, err := spiffeid.FromString(r.ID)
		if err != nil {
			return fmt.Errorf("gateway: stored revocation %q: %w", r.ID, err)
		}
		g.id.Revoke(id)
	}
	if len(rs) > 0 {
		g.log.Info("run-time revocations loaded", "count", len(rs))
	}
	return nil
}
