package identity

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// revocations is the deny list: the IDs of Config.Revoked, fixed at New, and
// those revoked at run time by the admin plane (Source.Revoke). A handshake
// reads it under a read lock, so a revocation refuses the next handshake at
// once.
type revocations struct {
	static map[spiffeid.ID]struct{} // read-only after New

	mu      sync.RWMutex
	dynamic map[spiffeid.ID]struct{}
}

func newRevocations(static map[spiffeid.ID]struct{}) *revocations {
	if static == nil {
		static = map[spiffeid.ID]struct{}{}
	}
	return &revocations{static: static, dynamic: map[spiffeid.ID]struct{}{}}
}

// IsRevoked reports whether id is on the deny list, from the config file or
// revoked at run time.
func (s *Source) IsRevoked(id spiffeid.ID) bool {
	if _, ok := s.revoked.static[id]; ok {
		return true
	}
	s.revoked.mu.RLock()
	_, ok := s.revoked.dynamic[id]
	s.revoked.mu.RUnlock()
	return ok
}

// Revoke adds id to the deny list at run time: every later handshake of id
// is refused. Closing its live connections is the caller's business (the
// gateway does it). It reports whether id was not revoked before.
func (s *Source) Revoke(id spiffeid.ID) bool {
	if _, ok := s.revoked.static[id]; ok {
		return false
	}
	s.revoked.mu.Lock()
	defer s.revoked.mu.Unlock()
	if _, ok := s.revoked.dynamic[id]; ok {
		return false
	}
	s.revoked.dynamic[id] = struct{}{}
	s.log.Warn("identity: SPIFFE ID revoked", slog.String("id", id.String()))
	return true
}

// ErrStaticRevocation is returned by [Source.Unrevoke] for an ID revoked
// in the config file, which only an edit of the file lifts.
var ErrStaticRevocation = fmt.Errorf("identity: revoked in the config file (identity.revoked): remove it there and restart the gateway")

// Unrevoke removes a run-time revocation of id. It reports whether id was
// revoked at run time; it fails with [ErrStaticRevocation] for an ID of
// Config.Revoked.
func (s *Source) Unrevoke(id spiffeid.ID) (bool, error) {
	if _, ok := s.revoked.static[id]; ok {
		return false, fmt.Errorf("%w: %s", ErrStaticRevocation, id)
	}
	s.revoked.mu.Lock()
	defer s.revoked.mu.Unlock()
	if _, ok := s.revoked.dynamic[id]; !ok {
		return false, nil
	}
	delete(s.revoked.dynamic, id)
	s.log.Warn("identity: SPIFFE ID revocation lifted", slog.String("id", id.String()))
	return true, nil
}

// ConfigRevocations returns the IDs revoked in the config file, sorted.
func (s *Source) ConfigRevocations() []spiffeid.ID {
	return slices.SortedFunc(maps.Keys(s.revoked.static), func(a, b spiffeid.ID) int {
		return strings.Compare(a.String(), b.String())
	})
}

// refuseRevokedResumption is the tls.Config.VerifyConnection of
// ServerTLSConfig. VerifyPeerCertificate (and with it the authorizer) is
// not called when a client resumes a TLS session; VerifyConnection is, so a
// client revoked after its first handshake cannot come back on a session
// ticket.
func (s *Source) refuseRevokedResumption(cs tls.ConnectionState) error {
	if !cs.DidResume || len(cs.PeerCertificates) == 0 {
		return nil
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		return fmt.Errorf("identity: resumed session: %w", err)
	}
	if s.IsRevoked(id) {
		s.log.Warn("identity: refused TLS session resumption", slog.String("id", id.String()), slog.String("reason", "revoked"))
		return fmt.Errorf("%w: %s", ErrRevoked, id)
	}
	return nil
}
