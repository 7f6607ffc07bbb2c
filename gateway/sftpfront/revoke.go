package sftpfront

import (
	"net"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Revocation at run time (issue 16): each SSH connection past its handshake
// is registered under the SPIFFE ID of its account, so that revoking the ID
// closes it (CloseIdentity). The login decision that follows the
// registration refuses a revoked ID, so none slips between the two.

// bindID registers raw as a connection of id.
func (s *Server) bindID(id spiffeid.ID, raw net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[spiffeid.ID]map[net.Conn]struct{}{}
	}
	if s.byID[id] == nil {
		s.byID[id] = map[net.Conn]struct{}{}
	}
	s.byID[id][raw] = struct{}{}
}

// unbindID forgets raw.
func (s *Server) unbindID(id spiffeid.ID, raw net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID[id], raw)
	if len(s.byID[id]) == 0 {
		delete(s.byID, id)
	}
}

// CloseIdentity closes every SSH connection of the accounts that act as id
// (an upload in flight is discarded, as on Close) and returns how many it
// closed.
func (s *Server) CloseIdentity(id spiffeid.ID) int {
	s.mu.Lock()
	cs := make([]net.Conn, 0, len(s.byID[id]))
	for c := range s.byID[id] {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	return len(cs)
}
