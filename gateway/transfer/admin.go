package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
)

// The admin plane (issue 16): revocations and quarantines, each decided by
// the policy as action "admin" (with the operation in input.admin), carried
// out, persisted in the store, then written to the audit log.

// Revoker carries a revocation out on the running gateway: the deny list
// its handshakes read, and the live connections of the revoked identity.
type Revoker interface {
	// Revoke adds id to the deny list and closes its live connections on
	// every front, returning how many it closed.
	Revoke(ctx context.Context, id spiffeid.ID) int
	// Unrevoke removes a run-time revocation of id.
	Unrevoke(id spiffeid.ID) error
	// ConfigRevocations are the IDs revoked in the config file.
	ConfigRevocations() []spiffeid.ID
}

// ErrNoRevoker is returned by the revocation operations of a core built
// without Deps.Revoker: it could record a revocation but not enforce it.
var ErrNoRevoker = errors.New("transfer: this gateway cannot enforce revocations (no Revoker)")

// decideAdmin asks the policy about an admin operation.
func (s *Service) decideAdmin(ctx context.Context, caller spiffeid.ID, req policy.AdminRequest) (policy.Input, policy.Decision, error) {
	if err := s.checkCaller(ctx, caller, "admin"); err != nil {
		return policy.Input{}, policy.Decision{}, err
	}
	in := policy.Input{Action: "admin", Source: party(caller), Admin: &req}
	d, err := s.decide(ctx, in)
	return in, d, err
}

// adminEvent is the audit entry of an allowed admin operation.
func adminEvent(in policy.Input, d policy.Decision) audit.Event {
	ev := inputEvent(audit.KindAdmin, in)
	ev.Action = "admin." + in.Admin.Op
	ev.Subject, ev.Matter, ev.Detail = in.Admin.Target, in.Admin.Matter, in.Admin.Reason
	ev.Decision = auditDecision(d, true)
	return ev
}

func parseTarget(s string) (spiffeid.ID, error) {
	id, err := spiffeid.FromString(s)
	if err != nil {
		return spiffeid.ID{}, badRequest("id %q: want a SPIFFE ID such as spiffe://harbor-law.example/paralegal/alice: %v", s, err)
	}
	return id, nil
}

// Revoke revokes target: new handshakes are refused at once and its live
// connections closed; the revocation is stored, so it survives a restart.
func (s *Service) Revoke(ctx context.Context, caller spiffeid.ID, target, reason string) (api.Revocation, error) {
	id, err := parseTarget(target)
	if err != nil {
		return api.Revocation{}, err
	}
	if err := checkReason(reason); err != nil {
		return api.Revocation{}, err
	}
	if s.revoker == nil {
		return api.Revocation{}, ErrNoRevoker
	}
	if id == caller {
		return api.Revocation{}, badRequest("an admin cannot revoke itself: ask another admin")
	}
	in, d, err := s.decideAdmin(ctx, caller, policy.AdminRequest{Op: "revoke", Target: id.String(), Reason: reason})
	if err != nil {
		return api.Revocation{}, err
	}
	if slices.Contains(s.revoker.ConfigRevocations(), id) {
		return api.Revocation{}, badRequest("%s is already revoked in the gateway's config file (identity.revoked)", id)
	}
	r := store.Revocation{ID: id.String(), By: caller.String(), At: s.now().UTC(), Reason: reason}
	if err := s.store.Revoke(ctx, r); errors.Is(err, store.ErrExists) {
		return api.Revocation{}, badRequest("%s is already revoked", id)
	} else if err != nil {
		return api.Revocation{}, fmt.Errorf("transfer: revoke: %w", err)
	}
	closed := s.revoker.Revoke(ctx, id)
	ev := adminEvent(in, d)
	ev.Detail = fmt.Sprintf("%s (%d live connections closed)", reason, closed)
	if _, err := s.Audit(ctx, ev); err != nil {
		return api.Revocation{}, err
	}
	s.log.WarnContext(ctx, "identity revoked", "id", id.String(), "closed_connections", closed)
	return api.Revocation{ID: r.ID, Source: "admin", By: r.By, At: r.At, Reason: reason,
		ClosedConnections: closed, DecisionID: d.ID}, nil
}

// Unrevoke lifts a run-time revocation of target.
func (s *Service) Unrevoke(ctx context.Context, caller spiffeid.ID, target, reason string) (api.Revocation, error) {
	id, err := parseTarget(target)
	if err != nil {
		return api.Revocation{}, err
	}
	if err := checkReason(reason); err != nil {
		return api.Revocation{}, err
	}
	if s.revoker == nil {
		return api.Revocation{}, ErrNoRevoker
	}
	in, d, err := s.decideAdmin(ctx, caller, policy.AdminRequest{Op: "unrevoke", Target: id.String(), Reason: reason})
	if err != nil {
		return api.Revocation{}, err
	}
	if slices.Contains(s.revoker.ConfigRevocations(), id) {
		return api.Revocation{}, badRequest("%s is revoked in the gateway's config file (identity.revoked): remove it there and restart", id)
	}
	prev, err := s.store.Unrevoke(ctx, id.String())
	if errors.Is(err, store.ErrNotFound) {
		return api.Revocation{}, badRequest("%s is not revoked", id)
	} else if err != nil {
		return api.Revocation{}, fmt.Errorf("transfer: unrevoke: %w", err)
	}
	if err := s.revoker.Unrevoke(id); err != nil {
		return api.Revocation{}, fmt.Errorf("transfer: unrevoke: %w", err)
	}
	ev := adminEvent(in, d)
	ev.Detail = fmt.Sprintf("%s (revoked by %s on %s: %s)", reason, prev.By, prev.At.Format("2006-01-02T15:04:05Z"), prev.Reason)
	if _, err := s.Audit(ctx, ev); err != nil {
		return api.Revocation{}, err
	}
	s.log.WarnContext(ctx, "identity revocation lifted", "id", id.String())
	return api.Revocation{ID: id.String(), Source: "admin", By: caller.String(), At: s.now().UTC(), Reason: reason, DecisionID: d.ID}, nil
}

// allowListing asks the policy whether caller may run the read-only admin
// op and records the allowed decision in the audit log (decide audits a
// refusal).
func (s *Service) allowListing(ctx context.Context, caller spiffeid.ID, op string) error {
	in, d, err := s.decideAdmin(ctx, caller, policy.AdminRequest{Op: op})
	if err != nil {
		return err
	}
	return s.auditAllowed(ctx, in, d, "")
}

// Revocations lists the deny list: the config file's and the run-time ones.
func (s *Service) Revocations(ctx context.Context, caller spiffeid.ID) ([]api.Revocation, error) {
	if err := s.allowListing(ctx, caller, "list_revocations"); err != nil {
		return nil, err
	}
	rs, err := s.store.Revocations(ctx)
	if err != nil {
		return nil, fmt.Errorf("transfer: revocations: %w", err)
	}
	out := []api.Revocation{}
	for _, r := range rs {
		out = append(out, api.Revocation{ID: r.ID, Source: "admin", By: r.By, At: r.At, Reason: r.Reason})
	}
	if s.revoker != nil {
		for _, id := range s.revoker.ConfigRevocations() {
			out = append(out, api.Revocation{ID: id.String(), Source: "config"})
		}
	}
	slices.SortStableFunc(out, func(a, b api.Revocation) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// selector checks a quarantine request and turns it into a store selector.
func selector(req api.QuarantineRequest) (store.Selector, error) {
	sel := store.Selector{Transfer: req.Transfer, Identity: req.Identity, Matter: req.Matter, Since: req.Since, Until: req.Until}
	if sel.Empty() {
		return sel, badRequest("pick transfers by id, identity, matter or time window (--since/--until)")
	}
	if req.Identity != "" {
		if _, err := parseTarget(req.Identity); err != nil {
			return sel, err
		}
	}
	if req.Matter != "" {
		if err := checkMatter(req.Matter); err != nil {
			return sel, err
		}
	}
	if !sel.Since.IsZero() && !sel.Until.IsZero() && !sel.Since.Before(sel.Until) {
		return sel, badRequest("--since %s is not before --until %s", sel.Since.Format("2006-01-02T15:04:05Z07:00"), sel.Until.Format("2006-01-02T15:04:05Z07:00"))
	}
	return sel, checkReason(req.Reason)
}

// Quarantine quarantines the transfers req picks: none is delivered until
// released. Each transfer quarantined is an audit entry.
func (s *Service) Quarantine(ctx context.Context, caller spiffeid.ID, req api.QuarantineRequest) (api.QuarantineResult, error) {
	return s.quarantineOp(ctx, caller, "quarantine", req)
}

// Release lifts the admin quarantine of the transfers req picks.
func (s *Service) Release(ctx context.Context, caller spiffeid.ID, req api.QuarantineRequest) (api.QuarantineResult, error) {
	return s.quarantineOp(ctx, caller, "release", req)
}

func (s *Service) quarantineOp(ctx context.Context, caller spiffeid.ID, op string, req api.QuarantineRequest) (api.QuarantineResult, error) {
	sel, err := selector(req)
	if err != nil {
		return api.QuarantineResult{}, err
	}
	in, d, err := s.decideAdmin(ctx, caller, policy.AdminRequest{Op: op, Target: req.Identity,
		Transfer: req.Transfer, Matter: req.Matter, Reason: req.Reason})
	if err != nil {
		return api.QuarantineResult{}, err
	}
	var ids []string
	if op == "quarantine" {
		ids, err = s.store.AdminQuarantine(ctx, sel, caller.String(), s.now().UTC(), req.Reason)
	} else {
		ids, err = s.store.AdminRelease(ctx, sel)
	}
	if err != nil {
		return api.QuarantineResult{}, fmt.Errorf("transfer: %s: %w", op, err)
	}
	cut := 0
	for _, id := range ids {
		if op == "quarantine" {
			cut += s.deliveries.cut(id, quarantinedDuring(id))
		}
		ev := adminEvent(in, d)
		ev.Transfer = id
		if _, err := s.Audit(ctx, ev); err != nil {
			return api.QuarantineResult{}, err
		}
	}
	s.log.WarnContext(ctx, "admin "+op, "transfers", len(ids), "downloads_cut", cut)
	return api.QuarantineResult{Transfers: append([]string{}, ids...), DecisionID: d.ID}, nil
}

// Quarantines lists the admin-quarantined transfers.
func (s *Service) Quarantines(ctx context.Context, caller spiffeid.ID) ([]api.Quarantine, error) {
	if err := s.allowListing(ctx, caller, "list_quarantines"); err != nil {
		return nil, err
	}
	qs, err := s.store.AdminQuarantines(ctx)
	if err != nil {
		return nil, fmt.Errorf("transfer: quarantines: %w", err)
	}
	out := []api.Quarantine{}
	for _, q := range qs {
		out = append(out, api.Quarantine{Transfer: q.Transfer, Sender: q.Sender, Matter: q.Matter, By: q.By, At: q.At, Reason: q.Reason})
	}
	return out, nil
}

// refuseQuarantined refuses the delivery of a transfer an admin quarantined.
func (s *Service) refuseQuarantined(ctx context.Context, caller spiffeid.ID, t *store.Transfer) error {
	q, err := s.store.AdminQuarantined(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("transfer: %w", err)
	}
	if !q {
		return nil
	}
	d := policy.Decision{Reasons: []policy.Reason{{Code: "transfer.quarantined",
		Message: "transfer " + t.ID + " is quarantined by an administrator; it is delivered once released"}}}
	s.auditRefusal(ctx, policy.Input{Action: "receive", Source: party(caller)}, d)
	return &DeniedError{Action: "receive", Decision: d}
}
