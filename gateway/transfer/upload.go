package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/agecheck"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/internal/crashpoint"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
)

// Create accepts a transfer from its signed manifest: the signature must verify
// against the trust bundles and name the caller as sender; then the policy decides
// "send" for the bundle and every recipient, bound to the manifest hash. A refusal
// stores nothing and returns a *DeniedError. Creating the same signed manifest again
// returns the existing transfer, so an interrupted send resumes from its offset.
func (s *Service) Create(ctx context.Context, caller spiffeid.ID, sm api.SignedManifest) (*api.Transfer, error) {
	if err := s.checkCaller(ctx, caller, "send"); err != nil {
		return nil, err
	}
	m, signer, err := sm.Verify(s.bundles, s.now())
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if signer != caller {
		return nil, badRequest("manifest signed by %s, but the caller is %s", signer, caller)
	}
	if m.SealedBy != "" || m.Sender != caller.String() {
		// Only the gateway's own ingest path (Ingest) seals manifests for others.
		return nil, badRequest("manifest names sender %s and sealed_by %q; send your own transfers, signed by yourself", m.Sender, m.SealedBy)
	}
	if m.CiphertextSize > s.cfg.MaxCiphertextSize {
		return nil, fmt.Errorf("%w: %d bytes of ciphertext, the gateway accepts at most %d", ErrTooLarge, m.CiphertextSize, s.cfg.MaxCiphertextSize)
	}
	dests, err := parties(m.Recipients)
	if err != nil {
		return nil, err
	}
	for _, d := range dests {
		id, _ := spiffeid.FromString(d.ID)
		if s.revoked(id) {
			dec := policy.Decision{Reasons: []policy.Reason{{Code: "identity.revoked", Message: d.ID + " is revoked and cannot receive transfers"}}}
			s.auditRefusal(ctx, policy.Input{Action: "send", Source: party(caller), Destinations: dests,
				Bundle: bundleOf(m, sm.Hash())}, dec)
			return nil, &DeniedError{Action: "send", Decision: dec}
		}
	}
	hash := sm.Hash()
	in := policy.Input{Action: "send", Source: party(caller), Destinations: dests, Bundle: bundleOf(m, hash)}
	in.Bundle.Stage = StageDeclared
	d, err := s.decideMatter(ctx, in)
	if err != nil {
		s.log.InfoContext(ctx, "send refused", "manifest", hash, "decision", d.ID)
		return nil, err
	}
	if t, err := s.store.TransferByManifest(ctx, caller.String(), hash); err == nil {
		if err := s.auditAllowed(ctx, in, d, t.ID); err != nil { // a resumed send
			return nil, err
		}
		return view(t, caller.String())
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("transfer: look up manifest: %w", err)
	}
	raw, err := json.Marshal(sm)
	if err != nil {
		return nil, fmt.Errorf("transfer: encode manifest: %w", err)
	}
	t := &store.Transfer{
		Sender: caller.String(), Recipients: m.Recipients, Matter: m.Matter, Labels: m.Labels,
		FileCount: m.FileCount, PlaintextSize: m.PlaintextSize, CiphertextSize: m.CiphertextSize,
		CiphertextSHA256: m.CiphertextSHA256, ManifestHash: hash, Manifest: raw, DecisionID: d.ID,
		State: store.StateUploading, Created: s.now().UTC(), Obligations: obligationsOf(d, s.now()),
	}
	if err := s.store.CreateTransfer(ctx, t); err != nil {
		if errors.Is(err, store.ErrExists) { // a concurrent create of the same manifest won
			t, err := s.store.TransferByManifest(ctx, caller.String(), hash)
			if err != nil {
				return nil, fmt.Errorf("transfer: look up manifest: %w", err)
			}
			if err := s.auditAllowed(ctx, in, d, t.ID); err != nil {
				return nil, err
			}
			return view(t, caller.String())
		}
		if noSpace(err) {
			return nil, fmt.Errorf("%w: create: %w", ErrNoSpace, err)
		}
		return nil, fmt.Errorf("transfer: create: %w", err)
	}
	crashpoint.Hit("transfer.create.committed")
	ev := transferEvent(audit.KindTransferCreated, caller.String(), t)
	ev.Action, ev.Decision, ev.Obligations = "send", auditDecision(d, true), auditObligations(t.Obligations)
	if _, err := s.logOnce(ctx, t.ID, audit.LookupCreated(t.ID), ev); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "transfer created", "transfer", t.ID, "manifest", hash, "decision", d.ID,
		"recipients", len(m.Recipients), "ciphertext_size", m.CiphertextSize)
	return view(t, caller.String())
}

// Stages of a send decision (policy input bundle.stage).
const (
	// StageDeclared: decided before the upload, on the declared sizes.
	StageDeclared = "declared"
	// StageFinal: an SFTP upload decided again with its real size, before sealing.
	StageFinal = "final"
)

// sent loads a transfer the caller sent, or ErrNotFound.
func (s *Service) sent(ctx context.Context, caller spiffeid.ID, id string) (*store.Transfer, error) {
	if err := s.checkCaller(ctx, caller, "upload"); err != nil {
		return nil, err
	}
	t, isSender, err := s.visible(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	if !isSender {
		return nil, ErrNotFound
	}
	return t, nil
}

// Offset returns how many ciphertext bytes of the caller's transfer the gateway
// holds durably: where an upload resumes.
func (s *Service) Offset(ctx context.Context, caller spiffeid.ID, id string) (int64, error) {
	t, err := s.sent(ctx, caller, id)
	if err != nil {
		return 0, err
	}
	return t.Offset, nil
}

// Upload appends ciphertext from r at offset to the caller's transfer and returns
// the new durable offset. The offset must be the durable one (*OffsetError says
// which it is). When the last byte arrives the SHA-256 is checked: a mismatch
// quarantines the transfer (ErrHashMismatch) and it is never deliverable. A
// streamed transfer (created from a pending manifest) is checked at Seal instead.
func (s *Service) Upload(ctx context.Context, caller spiffeid.ID, id string, offset int64, r io.Reader) (int64, error) {
	t, err := s.sent(ctx, caller, id)
	if err != nil {
		return 0, err
	}
	switch t.State {
	case store.StateReady:
		if offset == t.Offset && hasMore(r) { // bytes past the end of a complete upload
			return t.Offset, fmt.Errorf("%w: transfer %s is complete at %d bytes", ErrTooLarge, id, t.Offset)
		}
		if offset == t.Offset { // a retried final chunk: its completion may not be logged yet
			return t.Offset, s.auditUpload(ctx, t)
		}
		return t.Offset, &OffsetError{Expected: t.Offset}
	case store.StateQuarantined:
		return t.Offset, ErrHashMismatch
	}
	crashpoint.Hit("transfer.upload.write")
	var n int64
	if offset == 0 { // the age header passes agecheck before the store sees a byte
		r, err = agecheck.Check(r)
	}
	if err == nil {
		n, err = s.store.WriteAt(ctx, id, offset, r, s.now().UTC())
	}
	return s.uploaded(ctx, caller, t, n, err)
}

// uploaded turns the outcome of a write to transfer t — n, the durable offset
// afterwards, and err — into Upload's result, and logs a completed upload.
func (s *Service) uploaded(ctx context.Context, caller spiffeid.ID, t *store.Transfer, n int64, err error) (int64, error) {
	id := t.ID
	var oe *store.OffsetError
	var badHeader *agecheck.Error
	switch {
	case errors.As(err, &oe):
		return n, &OffsetError{Expected: oe.Expected}
	case errors.Is(err, store.ErrOffset):
		return n, &OffsetError{Expected: n}
	case errors.Is(err, store.ErrTooLarge):
		return n, fmt.Errorf("%w: the manifest declared %d bytes", ErrTooLarge, t.CiphertextSize)
	case errors.Is(err, store.ErrHashMismatch):
		crashpoint.Hit("transfer.quarantine.committed")
		s.log.WarnContext(ctx, "upload quarantined: hash mismatch", "transfer", id)
		ev := transferEvent(audit.KindQuarantined, caller.String(), t)
		ev.Detail = "the ciphertext's SHA-256 differs from the signed manifest"
		if _, err := s.logOnce(context.WithoutCancel(ctx), id, audit.LookupQuarantine(id), ev); err != nil {
			s.log.ErrorContext(ctx, "quarantine not logged", "transfer", id, "err", err)
		}
		return n, ErrHashMismatch
	case errors.As(err, &badHeader):
		s.log.WarnContext(ctx, "upload refused: malformed age header", "transfer", id, "err", badHeader)
		return n, fmt.Errorf("%w: %w", ErrBadRequest, badHeader)
	case noSpace(err):
		return n, fmt.Errorf("%w: upload %s: %w", ErrNoSpace, id, err)
	case err != nil:
		return n, fmt.Errorf("transfer: upload %s: %w", id, err)
	}
	if n == t.CiphertextSize && t.CiphertextSHA256 == "" {
		s.log.InfoContext(ctx, "upload complete, awaiting seal", "transfer", id, "bytes", n)
	} else if n == t.CiphertextSize {
		crashpoint.Hit("transfer.upload.committed")
		if err := s.auditUpload(ctx, t); err != nil {
			return n, err
		}
		crashpoint.Hit("transfer.upload.audited")
		s.log.InfoContext(ctx, "upload complete", "transfer", id, "bytes", n)
	}
	return n, nil
}
