package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
)

// Auditor is the audit log the core appends to, last in its sequence
// (authenticate → policy → verify → store → audit). *audit.Log implements it.
type Auditor interface {
	// Append logs ev and returns its index once it is durably in the log.
	Append(ctx context.Context, ev audit.Event) (uint64, error)
	// Receipt returns entry index with an inclusion proof and a signed checkpoint.
	Receipt(ctx context.Context, index uint64) (*audit.Receipt, error)
	// Find returns the latest entry with a lookup key (audit.LookupUpload …).
	Find(key string) (uint64, bool)
	// SignStatement signs a destruction statement with the log's key.
	SignStatement(st audit.Statement) (signed []byte, sum string, err error)
	// Origin is the log's origin, named in certificates.
	Origin() string
	// Bodies streams the bodies of the private entries below size to
	// which trustDomain is a party (privateaudit.go).
	Bodies(ctx context.Context, trustDomain string, size uint64, fn func(audit.Body) error) error
}

var _ Auditor = (*audit.Log)(nil)

// ErrAudit: the audit log could not record the action, so the action is not
// acknowledged (the core fails closed). Retrying is safe.
var ErrAudit = errors.New("transfer: the audit log could not record this action")

// Audit appends an event on behalf of a front (an SFTP login, an admin action).
// The event's time is set by the log when zero.
func (s *Service) Audit(ctx context.Context, ev audit.Event) (uint64, error) {
	i, err := s.audit.Append(ctx, ev)
	if err != nil {
		s.log.ErrorContext(ctx, "audit append failed", "kind", ev.Kind, "err", err)
		if noSpace(err) {
			return 0, fmt.Errorf("%w: %w: %v", ErrAudit, ErrNoSpace, err)
		}
		return 0, fmt.Errorf("%w: %v", ErrAudit, err)
	}
	s.watches.appended()
	s.observeRisk(ctx, ev)
	return i, nil
}

func auditDecision(d policy.Decision, allow bool) *audit.Decision {
	ad := &audit.Decision{ID: d.ID, Allow: allow}
	for _, r := range d.Reasons {
		ad.Reasons = append(ad.Reasons, r.Code)
	}
	return ad
}

// inputEvent is the event of a policy input: who asked what, for whom, about which bundle.
func inputEvent(kind audit.Kind, in policy.Input) audit.Event {
	ev := audit.Event{Kind: kind, Actor: in.Source.ID, Action: in.Action}
	for _, p := range in.Destinations {
		ev.Recipients = append(ev.Recipients, p.ID)
	}
	if b := in.Bundle; b != nil {
		ev.Matter, ev.Labels, ev.ManifestSHA256 = b.Matter, b.Labels, b.ManifestHash
	}
	return ev
}

// auditRefusal logs a refusal of an authenticated caller. The request is refused
// whether or not the entry could be written.
func (s *Service) auditRefusal(ctx context.Context, in policy.Input, d policy.Decision) {
	ev := inputEvent(audit.KindDecision, in)
	ev.Decision = auditDecision(d, false)
	s.Audit(ctx, ev)
	s.queueRefusal(ctx, in, d)
}

// auditAllowed logs an allowed decision that leaves no other record.
func (s *Service) auditAllowed(ctx context.Context, in policy.Input, d policy.Decision, transferID string) error {
	ev := inputEvent(audit.KindDecision, in)
	ev.Decision, ev.Transfer = auditDecision(d, true), transferID
	_, err := s.Audit(ctx, ev)
	return err
}

// transferEvent is an event about stored transfer t by actor.
func transferEvent(kind audit.Kind, actor string, t *store.Transfer) audit.Event {
	ev := audit.Event{Kind: kind, Actor: actor, Transfer: t.ID, Recipients: t.Recipients, Matter: t.Matter,
		Labels: t.Labels, ManifestSHA256: t.ManifestHash, CiphertextSHA256: t.CiphertextSHA256,
		CiphertextSize: t.CiphertextSize}
	if actor != t.Sender {
		ev.Sender = t.Sender // the sender's organisation is a party of the entry
	}
	return ev
}

// auditUpload logs a completed upload once: a retried final chunk finds it logged.
func (s *Service) auditUpload(ctx context.Context, t *store.Transfer) error {
	ev := transferEvent(audit.KindUploadComplete, t.Sender, t)
	ev.Decision = &audit.Decision{ID: t.DecisionID, Allow: true}
	_, err := s.logOnce(ctx, t.ID, audit.LookupUpload(t.ID), ev)
	return err
}

// logOnce appends ev, the record of a fact about transfer id that the store
// has committed, unless the log holds an entry under key already. The check
// and the append run under the transfer's lock, a database lock on a cluster
// backend: of the replicas — and start-up reconcilers — that find the fact
// unlogged at once, exactly one logs it. It reports whether it appended.
// The caller must not hold the transfer's lock.
func (s *Service) logOnce(ctx context.Context, id, key string, ev audit.Event) (bool, error) {
	if _, ok := s.audit.Find(key); ok {
		return false, nil
	}
	unlock, err := s.store.Lock(ctx, "transfer/"+id)
	if err != nil {
		return false, fmt.Errorf("transfer: log %s of %s: %w", ev.Kind, id, err)
	}
	defer unlock()
	if _, ok := s.audit.Find(key); ok {
		return false, nil
	}
	if _, err := s.Audit(ctx, ev); err != nil {
		return false, err
	}
	return true, nil
}

// Receipt returns the caller's receipt for a transfer: the sender's upload
// completion, or a recipient's acknowledgement. It waits for a signed checkpoint
// that covers the entry. ErrNotReady until there is one.
func (s *Service) Receipt(ctx context.Context, caller spiffeid.ID, id string) (*audit.Receipt, error) {
	if err := s.checkCaller(ctx, caller, "receipt"); err != nil {
		return nil, err
	}
	t, isSender, err := s.visible(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	key := audit.LookupAck(t.ID, caller.String())
	if isSender {
		key = audit.LookupUpload(t.ID)
	}
	i, ok := s.audit.Find(key)
	if !ok {
		return nil, fmt.Errorf("%w: no receipt yet (upload not complete, or not acknowledged)", ErrNotReady)
	}
	r, err := s.audit.Receipt(ctx, i)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAudit, err)
	}
	return r, nil
}

// keyReceipt returns the receipt of id's latest key registration, as JSON, or nil
// when the log has none (keys registered before the log existed).
func (s *Service) keyReceipt(ctx context.Context, id string) (json.RawMessage, error) {
	i, ok := s.audit.Find(audit.LookupKeys(id))
	if !ok {
		return nil, nil
	}
	r, err := s.audit.Receipt(ctx, i)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAudit, err)
	}
	return r.Marshal(), nil
}
