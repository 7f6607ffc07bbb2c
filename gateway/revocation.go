package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/identity"
	"github.com/lexgate/lexgate/gateway/store"
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
	return r.g.cut(id)
}

func (r revoker) Unrevoke(id spiffeid.ID) error {
	_, err := r.g.id.Unrevoke(id)
	return err
}

func (r revoker) ConfigRevocations() []spiffeid.ID { return r.g.id.ConfigRevocations() }

// cut closes every live connection and SFTP session of id on this replica
// and returns how many.
func (g *Gateway) cut(id spiffeid.ID) int {
	n := g.live.closeID(id)
	if g.sftp != nil {
		n += g.sftp.CloseIdentity(id)
	}
	return n
}

// Revocations across replicas (issue 19). The deny list the handshakes read
// is in memory; the store is the truth every replica shares. A revocation
// bumps the store's revocations version in its own transaction, so:
//
//   - before every decision the core calls revocationSync.refresh, one
//     indexed read of the version: when it moved, the replica reads the
//     revocations again, applies the difference to its deny list and closes
//     the live connections of each newly revoked identity. The request after
//     an admin's revoke has returned, on any replica, is refused;
//   - a replica with no request to trigger that still cuts open sessions:
//     on PostgreSQL each change NOTIFYs the replicas (watch), and a poll of
//     the version every revocationPoll catches a notification lost while
//     the listening connection was being re-established.
//
// On the embedded default one process owns the store, the admin call
// updates the deny list itself, and refresh reads an unchanged version.

// revocationPoll is how often a replica on a shared store reads the
// revocations version without a request or a notification asking.
const revocationPoll = 2 * time.Second

// revocationSync keeps this replica's deny list in step with the store.
type revocationSync struct {
	g    *Gateway
	seen atomic.Int64 // the store version the deny list reflects; -1: none yet

	mu      sync.Mutex
	applied map[spiffeid.ID]struct{} // the run-time revocations read from the store
}

func newRevocationSync(g *Gateway) *revocationSync {
	r := &revocationSync{g: g, applied: map[spiffeid.ID]struct{}{}}
	r.seen.Store(-1)
	return r
}

// refresh brings the deny list up to the store's revocations: a no-op but
// for one read while the version has not moved.
func (r *revocationSync) refresh(ctx context.Context) error {
	v, err := r.g.store.RevocationsVersion(ctx)
	if err != nil {
		return fmt.Errorf("gateway: revocations: %w", err)
	}
	if v == r.seen.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v == r.seen.Load() {
		return nil
	}
	// Read after the version: a change between the two reads is in the
	// list, and moves the version again, so it is read once more, harmlessly.
	rs, err := r.g.store.Revocations(ctx)
	if err != nil {
		return fmt.Errorf("gateway: revocations: %w", err)
	}
	now := make(map[spiffeid.ID]struct{}, len(rs))
	for _, rv := range rs {
		id, err := spiffeid.FromString(rv.ID)
		if err != nil {
			return fmt.Errorf("gateway: stored revocation %q: %w", rv.ID, err)
		}
		now[id] = struct{}{}
	}
	for id := range now {
		if _, ok := r.applied[id]; ok {
			continue
		}
		r.g.id.Revoke(id)
		if n := r.g.cut(id); n > 0 {
			r.g.log.Warn("revoked identity's sessions closed", "id", id.String(), "closed_connections", n)
		}
	}
	for id := range r.applied {
		if _, ok := now[id]; !ok {
			if _, err := r.g.id.Unrevoke(id); err != nil {
				return fmt.Errorf("gateway: lifting the revocation of %s: %w", id, err)
			}
		}
	}
	if !maps.Equal(now, r.applied) {
		r.g.log.Info("run-time revocations read from the store", "count", len(now), "version", v)
	}
	r.applied = now
	r.seen.Store(v)
	return nil
}

// watch cuts the sessions of identities revoked on other replicas while no
// request asks: it refreshes on every notification of the store and every
// revocationPoll, until ctx ends.
func (r *revocationSync) watch(ctx context.Context) {
	refresh := func() {
		if err := r.refresh(ctx); err != nil && ctx.Err() == nil {
			r.g.log.Error("revocations: refresh", "err", err)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		t := time.NewTicker(revocationPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				refresh()
			}
		}
	})
	for ctx.Err() == nil {
		err := r.g.store.WatchRevocations(ctx, refresh, refresh)
		if err == nil || ctx.Err() != nil {
			return
		}
		r.g.log.Warn("revocations: listening for changes failed; the poll covers until it is back", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(revocationPoll):
		}
	}
}

// sharedStore reports whether other replicas may write the store.
func (g *Gateway) sharedStore() bool { return g.cfg.Store.Driver == store.DriverPostgres }

// sharedRefresh is the core's Refresh: the revocations version read before
// each decision on a shared store; nil on the embedded default, where this
// process makes every change itself.
func (g *Gateway) sharedRefresh() func(context.Context) error {
	if !g.sharedStore() {
		return nil
	}
	return g.revs.refresh
}
