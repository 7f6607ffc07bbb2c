package transfer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
)

// Matters at run time: a legal hold on a matter (placed and lifted by records
// managers, as the policy decides) and four-eyes requests to add a recipient
// to a matter (made by one person, approved by another). Each is a policy
// decision, a store record and an audit entry; the approved requests are the
// matter's grants, passed to every send and receive decision about the
// matter as input.matter_grants.

// CodeSelfApproval is the reason code of a four-eyes request approved by its
// requester; the policy refuses it, and so does the core.
const CodeSelfApproval = "four_eyes.self_approval"

// maxReason bounds the free-text reason of a request or hold.
const maxReason = 1000

func checkReason(reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return badRequest("give a reason (--reason): it goes into the audit log")
	case len(reason) > maxReason:
		return badRequest("reason of %d bytes: at most %d", len(reason), maxReason)
	}
	return nil
}

func checkMatter(matter string) error {
	if matter == "" || len(matter) > 200 || strings.ContainsAny(matter, "/\\ \t\r\n") {
		return badRequest("matter %q: want a matter id such as HL-2026-0042", matter)
	}
	return nil
}

// checkGrantee accepts a SPIFFE ID, a team prefix (a SPIFFE ID ending in
// "/") or a trust domain.
func checkGrantee(r string) error {
	if strings.HasPrefix(r, "spiffe://") {
		if _, err := spiffeid.FromString(strings.TrimSuffix(r, "/")); err != nil {
			return badRequest("recipient %q: %v", r, err)
		}
		return nil
	}
	if _, err := spiffeid.TrustDomainFromString(r); err != nil {
		return badRequest("recipient %q: want a SPIFFE ID or a trust domain: %v", r, err)
	}
	return nil
}

func requestView(r store.MatterRequest, decision string) api.MatterRequest {
	return api.MatterRequest{ID: r.ID, Matter: r.Matter, Recipient: r.Recipient, RequestedBy: r.RequestedBy,
		Reason: r.Reason, Created: r.Created, ApprovedBy: r.ApprovedBy, ApprovedAt: r.ApprovedAt, DecisionID: decision}
}

// RequestRecipient asks to add a recipient to a matter (policy action
// matter_request_recipient). The request waits for a second person's approval.
func (s *Service) RequestRecipient(ctx context.Context, caller spiffeid.ID, req api.MatterRequestCreate) (api.MatterRequest, error) {
	const action = "matter_request_recipient"
	if err := s.checkCaller(ctx, caller, action); err != nil {
		return api.MatterRequest{}, err
	}
	if err := errors.Join(checkMatter(req.Matter), checkGrantee(req.Recipient), checkReason(req.Reason)); err != nil {
		return api.MatterRequest{}, err
	}
	in := policy.Input{Action: action, Source: party(caller), Bundle: &policy.Bundle{Matter: req.Matter},
		Request: &policy.Request{Matter: req.Matter, Recipient: req.Recipient, RequestedBy: caller.String(), Reason: req.Reason}}
	d, err := s.decideMatter(ctx, in)
	if err != nil {
		return api.MatterRequest{}, err
	}
	r := store.MatterRequest{Matter: req.Matter, Recipient: req.Recipient, RequestedBy: caller.String(),
		Reason: req.Reason, Created: s.now().UTC()}
	if err := s.store.CreateMatterRequest(ctx, &r); err != nil {
		return api.MatterRequest{}, fmt.Errorf("transfer: matter request: %w", err)
	}
	ev := inputEvent(audit.KindMatterRequest, in)
	ev.Recipients, ev.Decision = []string{req.Recipient}, auditDecision(d, true)
	ev.Detail = "request " + r.ID + ": " + req.Reason
	if _, err := s.Audit(ctx, ev); err != nil {
		return api.MatterRequest{}, err
	}
	s.log.InfoContext(ctx, "matter recipient requested", "request", r.ID, "matter", r.Matter, "recipient", r.Recipient)
	return requestView(r, d.ID), nil
}

// PendingRequests lists the requests awaiting approval that were made by the
// caller's organisation (its trust domain).
func (s *Service) PendingRequests(ctx context.Context, caller spiffeid.ID) ([]api.MatterRequest, error) {
	if err := s.checkCaller(ctx, caller, "matter_pending"); err != nil {
		return nil, err
	}
	rs, err := s.store.PendingMatterRequests(ctx)
	if err != nil {
		return nil, fmt.Errorf("transfer: pending requests: %w", err)
	}
	out := []api.MatterRequest{}
	for _, r := range rs {
		if id, err := spiffeid.FromString(r.RequestedBy); err == nil && id.TrustDomain() == caller.TrustDomain() {
			out = append(out, requestView(r, ""))
		}
	}
	return out, nil
}

// ApproveRequest approves pending request id (policy action
// matter_approve_recipient). The requester can never approve their own
// request: the policy refuses it, and the core refuses it again whatever
// the policy says.
func (s *Service) ApproveRequest(ctx context.Context, caller spiffeid.ID, id string) (api.MatterRequest, error) {
	const action = "matter_approve_recipient"
	if err := s.checkCaller(ctx, caller, action); err != nil {
		return api.MatterRequest{}, err
	}
	r, err := s.store.MatterRequestByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return api.MatterRequest{}, fmt.Errorf("%w: no matter request %s", ErrNotFound, id)
	}
	if err != nil {
		return api.MatterRequest{}, fmt.Errorf("transfer: matter request: %w", err)
	}
	if r.ApprovedBy != "" {
		return api.MatterRequest{}, badRequest("request %s was already approved by %s", id, r.ApprovedBy)
	}
	in := policy.Input{Action: action, Source: party(caller), Bundle: &policy.Bundle{Matter: r.Matter},
		Request: &policy.Request{Matter: r.Matter, Recipient: r.Recipient, RequestID: r.ID, RequestedBy: r.RequestedBy, Reason: r.Reason}}
	d, err := s.decideMatter(ctx, in)
	if err != nil {
		return api.MatterRequest{}, err
	}
	selfApproval := func() error {
		return s.refuseObligation(ctx, in, d, CodeSelfApproval,
			fmt.Sprintf("%s made request %s and cannot approve it: a second person must (four-eyes)", caller, id))
	}
	if r.RequestedBy == caller.String() {
		return api.MatterRequest{}, selfApproval()
	}
	r, err = s.store.ApproveMatterRequest(ctx, id, caller.String(), s.now().UTC())
	switch {
	case errors.Is(err, store.ErrSelfApproval):
		return api.MatterRequest{}, selfApproval()
	case errors.Is(err, store.ErrExists):
		return api.MatterRequest{}, badRequest("%v", err)
	case err != nil:
		return api.MatterRequest{}, fmt.Errorf("transfer: approve %s: %w", id, err)
	}
	ev := inputEvent(audit.KindMatterApproval, in)
	ev.Recipients, ev.Decision = []string{r.Recipient}, auditDecision(d, true)
	ev.Detail = "request " + r.ID + " by " + r.RequestedBy + " approved: " + r.Recipient + " may receive transfers of " + r.Matter
	if _, err := s.Audit(ctx, ev); err != nil {
		return api.MatterRequest{}, err
	}
	s.log.InfoContext(ctx, "matter recipient approved", "request", r.ID, "matter", r.Matter, "recipient", r.Recipient)
	return requestView(r, d.ID), nil
}

// PlaceHold puts matter on legal hold (policy action legal_hold_place): the
// sweeper deletes nothing of it until the hold is lifted.
func (s *Service) PlaceHold(ctx context.Context, caller spiffeid.ID, matter, reason string) (api.Hold, error) {
	return s.hold(ctx, caller, "legal_hold_place", matter, reason)
}

// LiftHold lifts the legal hold on matter (policy action legal_hold_lift):
// the next sweep deletes what expired meanwhile.
func (s *Service) LiftHold(ctx context.Context, caller spiffeid.ID, matter, reason string) (api.Hold, error) {
	return s.hold(ctx, caller, "legal_hold_lift", matter, reason)
}

func (s *Service) hold(ctx context.Context, caller spiffeid.ID, action, matter, reason string) (api.Hold, error) {
	if err := s.checkCaller(ctx, caller, action); err != nil {
		return api.Hold{}, err
	}
	if err := errors.Join(checkMatter(matter), checkReason(reason)); err != nil {
		return api.Hold{}, err
	}
	in := policy.Input{Action: action, Source: party(caller), Bundle: &policy.Bundle{Matter: matter},
		Request: &policy.Request{Matter: matter, RequestedBy: caller.String(), Reason: reason}}
	d, err := s.decideMatter(ctx, in)
	if err != nil {
		return api.Hold{}, err
	}
	h := store.Hold{Matter: matter, By: caller.String(), At: s.now().UTC(), Reason: reason}
	if action == "legal_hold_place" {
		err = s.store.PlaceHold(ctx, h)
	} else {
		var placed store.Hold
		placed, err = s.store.LiftHold(ctx, matter)
		h.Reason = reason + " (placed by " + placed.By + " on " + placed.At.Format("2006-01-02") + ": " + placed.Reason + ")"
	}
	switch {
	case errors.Is(err, store.ErrExists):
		return api.Hold{}, badRequest("matter %s is already on legal hold", matter)
	case errors.Is(err, store.ErrNotFound):
		return api.Hold{}, badRequest("matter %s is not on legal hold", matter)
	case err != nil:
		return api.Hold{}, fmt.Errorf("transfer: %s: %w", action, err)
	}
	ev := inputEvent(audit.KindLegalHold, in)
	ev.Decision, ev.Detail = auditDecision(d, true), reason
	if _, err := s.Audit(ctx, ev); err != nil {
		return api.Hold{}, err
	}
	s.log.InfoContext(ctx, "legal hold", "action", action, "matter", matter)
	return api.Hold{Matter: matter, By: h.By, At: h.At, Reason: h.Reason, DecisionID: d.ID}, nil
}

// Holds lists the legal holds placed by the caller's organisation, each with
// the transfers it keeps past their expiry.
func (s *Service) Holds(ctx context.Context, caller spiffeid.ID) ([]api.Hold, error) {
	if err := s.checkCaller(ctx, caller, "legal_hold_list"); err != nil {
		return nil, err
	}
	hs, err := s.store.Holds(ctx)
	if err != nil {
		return nil, fmt.Errorf("transfer: holds: %w", err)
	}
	now := s.now().UTC()
	out := []api.Hold{}
	for _, h := range hs {
		if id, err := spiffeid.FromString(h.By); err != nil || id.TrustDomain() != caller.TrustDomain() {
			continue
		}
		v := api.Hold{Matter: h.Matter, By: h.By, At: h.At, Reason: h.Reason}
		ts, err := s.store.ExpiredOf(ctx, h.Matter, now)
		if err != nil {
			return nil, fmt.Errorf("transfer: holds: %w", err)
		}
		for _, t := range ts {
			v.HeldPastExpiry = append(v.HeldPastExpiry, api.HeldTransfer{ID: t.ID, Sender: t.Sender, ExpiresAt: t.Obligations.ExpiresAt})
		}
		out = append(out, v)
	}
	return out, nil
}
