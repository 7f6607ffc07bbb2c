package transfer

import (
	"context"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
)

// AuditBodies streams the bodies of the private audit entries below size to
// which the caller's organisation (its trust domain) is a party: it is a
// party of an entry when the entry's actor, sender, recipients or subject is
// of that organisation (audit.Parties). Its admins are of the organisation,
// and see the same. Nobody else gets a body: the tiles hold commitments.
func (s *Service) AuditBodies(ctx context.Context, caller spiffeid.ID, size uint64, fn func(api.AuditBody) error) error {
	if err := s.checkCaller(ctx, caller, "audit_read"); err != nil {
		return err
	}
	return s.audit.Bodies(ctx, caller.TrustDomain().Name(), size, func(b audit.Body) error {
		return fn(api.AuditBody{Index: b.Index, Salt: b.Salt, Body: b.Body})
	})
}
