package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
)

// Obligations: the decision that allows a send carries obligations
// (retention, max_downloads, expires_at); the core stores them with the
// transfer and in its transfer_created audit entry, and enforces them on
// every delivery path, because every path (HTTP download, SFTP /inbox get,
// custodial get) opens the ciphertext through OpenFrom.
//
// What counts as one download: a delivery that serves the ciphertext's first
// byte (an HTTP GET without Range or with a Range starting at 0; every SFTP
// open for reading, since an SFTP open does not say where reads will start).
// A recipient cannot decrypt without the age header at the start of the
// file, so every usable copy costs one count; the other ranges of a parallel
// download and a download resumed from byte k > 0 are free. Once a
// recipient is at its limit, ranges not starting at 0 are served only within
// Config.ResumeWindow of its last counted download (to finish that one);
// later they are refused too. The check and the count are one store
// transaction, so concurrent downloads never exceed the limit.

// Reason codes of refusals the core makes itself, after the policy allowed.
const (
	CodeDownloadLimit = "obligation.download_limit"
	CodeExpired       = "obligation.expired"
)

// obligationsOf turns a decision's obligations into the stored form. A
// retention without an expiry expires at now + retention.
func obligationsOf(d policy.Decision, now time.Time) store.Obligations {
	o := store.Obligations{RetentionDays: d.Obligations.RetentionDays, MaxDownloads: d.Obligations.MaxDownloads,
		ExpiresAt: d.Obligations.ExpiresAt.UTC()}
	if o.ExpiresAt.IsZero() && o.RetentionDays > 0 {
		o.ExpiresAt = now.UTC().Add(time.Duration(o.RetentionDays) * 24 * time.Hour)
	}
	return o
}

func auditObligations(o store.Obligations) *audit.Obligations {
	return &audit.Obligations{RetentionDays: o.RetentionDays, MaxDownloads: o.MaxDownloads, ExpiresAt: o.ExpiresAt}
}

// withMatter fills in's matter_grants and matter_hold from the store, for
// the bundle's matter. A store error fails the decision closed.
func (s *Service) withMatter(ctx context.Context, in policy.Input) (policy.Input, error) {
	if in.Bundle == nil || in.Bundle.Matter == "" {
		return in, nil
	}
	grants, err := s.store.Grants(ctx, in.Bundle.Matter)
	if err != nil {
		return in, fmt.Errorf("transfer: grants of %s: %w", in.Bundle.Matter, err)
	}
	for _, g := range grants {
		in.MatterGrants = append(in.MatterGrants, policy.MatterGrant{Recipient: g.Recipient, ApprovedBy: g.ApprovedBy,
			RequestedBy: g.RequestedBy, ApprovedAt: g.ApprovedAt})
	}
	h, err := s.store.HoldOn(ctx, in.Bundle.Matter)
	switch {
	case err == nil:
		in.MatterHold = &policy.MatterHold{Held: true, By: h.By, At: h.At, Reason: h.Reason}
	case !errors.Is(err, store.ErrNotFound):
		return in, fmt.Errorf("transfer: hold on %s: %w", in.Bundle.Matter, err)
	}
	return in, nil
}

// decideMatter is decide for an input about a bundle: with the matter's
// grants and hold from the store.
func (s *Service) decideMatter(ctx context.Context, in policy.Input) (policy.Decision, error) {
	in, err := s.withMatter(ctx, in)
	if err != nil {
		return policy.Decision{}, err
	}
	return s.decide(ctx, in)
}

// refuseObligation refuses a delivery the policy allowed (decision d) because
// an obligation forbids it: audited, with d's id.
func (s *Service) refuseObligation(ctx context.Context, in policy.Input, d policy.Decision, code, msg string) error {
	dec := policy.Decision{ID: d.ID, PolicyVersion: d.PolicyVersion, Reasons: []policy.Reason{{Code: code, Message: msg}}}
	s.auditRefusal(ctx, in, dec)
	s.log.InfoContext(ctx, "delivery refused by an obligation", "code", code, "decision", d.ID)
	return &DeniedError{Action: in.Action, Decision: dec}
}

// enforce checks t's obligations for a delivery to caller starting at byte
// from, counting it when it serves byte 0. It returns the delivery's audit
// detail ("download 2 of 5").
func (s *Service) enforce(ctx context.Context, caller string, t *store.Transfer, from int64, in policy.Input, d policy.Decision) (string, error) {
	now := s.now().UTC()
	o := t.Obligations
	if o.Expired(now) {
		return "", s.refuseObligation(ctx, in, d, CodeExpired,
			fmt.Sprintf("transfer %s expired on %s (its retention obligation); it is no longer delivered", t.ID, o.ExpiresAt.Format("2006-01-02 15:04:05Z07:00")))
	}
	n, err := s.store.CountDownload(ctx, t.ID, store.Download{Recipient: caller, Counted: from == 0,
		Max: o.MaxDownloads, ResumeWindow: s.cfg.ResumeWindow, Now: now})
	var le *store.LimitError
	switch {
	case errors.As(err, &le):
		return "", s.refuseObligation(ctx, in, d, CodeDownloadLimit,
			fmt.Sprintf("download limit reached: %d of %d downloads of transfer %s used", le.Count, le.Max, t.ID))
	case errors.Is(err, store.ErrNotFound):
		return "", ErrNotFound
	case err != nil:
		return "", fmt.Errorf("transfer: count download of %s: %w", t.ID, err)
	}
	switch {
	case from != 0:
		return fmt.Sprintf("range from byte %d: not counted", from), nil
	case o.MaxDownloads > 0:
		s.log.InfoContext(ctx, "download counted", slog.String("transfer", t.ID), slog.Int("count", n), slog.Int("max", o.MaxDownloads))
		return fmt.Sprintf("download %d of %d", n, o.MaxDownloads), nil
	}
	return fmt.Sprintf("download %d", n), nil
}

// heldPastExpiry reports whether t expired and a legal hold on its matter keeps it.
func (s *Service) heldPastExpiry(ctx context.Context, t *store.Transfer) (bool, error) {
	if !t.Obligations.Expired(s.now()) {
		return false, nil
	}
	if s.staticHold(t.Matter) {
		return true, nil
	}
	_, err := s.store.HoldOn(ctx, t.Matter)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("transfer: hold on %s: %w", t.Matter, err)
}
