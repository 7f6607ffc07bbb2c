package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/internal/crashpoint"
	"github.com/lexgate/lexgate/gateway/store"
)

// Streamed transfers let lex upload while it is still encrypting. The sender
// creates the transfer from a signed manifest whose ciphertext hash is pending
// (api.Manifest.Pending): everything the policy decides on is in it, including
// the exact ciphertext size, which age determines from the plaintext size. The
// policy decides on that manifest at Create, bound to its hash, exactly as for
// any other transfer. The ciphertext then arrives by Upload as usual, and the
// gateway hashes it as it lands. Seal completes the transfer with the final
// manifest: signed by the same sender, identical except for the hash, which
// must be the hash of what arrived. Until then the transfer is not deliverable;
// afterwards it is indistinguishable from one created with its hash, and
// recipients verify the final manifest.

// Seal completes the caller's streamed transfer id with sm, its final signed
// manifest. It is refused (ErrBadRequest) unless sm verifies, is signed by the
// caller and differs from the manifest the transfer was created from only by
// carrying the ciphertext hash; an upload still incomplete is an *OffsetError
// saying where to resume. If the hash differs from that of the bytes received
// the transfer is quarantined (ErrHashMismatch). Sealing again with the same
// manifest returns the ready transfer.
func (s *Service) Seal(ctx context.Context, caller spiffeid.ID, id string, sm api.SignedManifest) (*api.Transfer, error) {
	t, err := s.sent(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	final, signer, err := sm.Verify(s.bundles, s.now())
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if signer != caller || final.SealedBy != "" {
		return nil, badRequest("sealing manifest signed by %s, but the caller is %s", signer, caller)
	}
	hash := sm.Hash()
	if t.State == store.StateReady && t.ManifestHash == hash { // a retried seal
		if err := s.auditUpload(ctx, t); err != nil {
			return nil, err
		}
		return view(t, caller.String())
	}
	var stored api.SignedManifest
	if err := json.Unmarshal(t.Manifest, &stored); err != nil {
		return nil, fmt.Errorf("transfer: stored manifest of %s: %w", id, err)
	}
	intent, err := stored.Decode()
	if err != nil {
		return nil, fmt.Errorf("transfer: stored manifest of %s: %w", id, err)
	}
	if err := api.SealOf(intent, final); err != nil {
		return nil, badRequest("seal of %s: %v", id, err)
	}
	raw, err := json.Marshal(sm)
	if err != nil {
		return nil, fmt.Errorf("transfer: encode manifest: %w", err)
	}
	err = s.store.Seal(ctx, id, store.Seal{CiphertextSHA256: final.CiphertextSHA256, ManifestHash: hash, Manifest: raw}, s.now().UTC())
	var oe *store.OffsetError
	switch {
	case errors.As(err, &oe):
		return nil, &OffsetError{Expected: oe.Expected}
	case errors.Is(err, store.ErrHashMismatch):
		s.log.WarnContext(ctx, "seal quarantined: hash mismatch", "transfer", id)
		ev := transferEvent(audit.KindQuarantined, caller.String(), t)
		ev.Detail = "the ciphertext's SHA-256 differs from the signed manifest"
		if _, err := s.logOnce(context.WithoutCancel(ctx), id, audit.LookupQuarantine(id), ev); err != nil {
			s.log.ErrorContext(ctx, "quarantine not logged", "transfer", id, "err", err)
		}
		return nil, ErrHashMismatch
	case errors.Is(err, store.ErrInvalid):
		return nil, badRequest("%v", err)
	case noSpace(err):
		return nil, fmt.Errorf("%w: seal %s: %w", ErrNoSpace, id, err)
	case err != nil:
		return nil, fmt.Errorf("transfer: seal %s: %w", id, err)
	}
	crashpoint.Hit("transfer.seal.committed")
	if t, err = s.store.Transfer(ctx, id); err != nil {
		return nil, fmt.Errorf("transfer: load %s: %w", id, err)
	}
	if err := s.auditUpload(ctx, t); err != nil {
		return nil, err
	}
	crashpoint.Hit("transfer.seal.audited")
	s.log.InfoContext(ctx, "upload complete", "transfer", id, "bytes", t.CiphertextSize, "manifest", hash)
	return view(t, caller.String())
}

// cancelDetail is the audit entry's detail for a cancelled upload.
const cancelDetail = "cancelled by its sender before the upload completed"

// Cancel deletes the caller's transfer id while its upload is still in
// progress, bytes and all, and logs an expiry entry: lex does this when it
// abandons an interrupted send to start afresh. A sealed or quarantined
// transfer cannot be cancelled (ErrBadRequest); others' transfers are
// ErrNotFound.
func (s *Service) Cancel(ctx context.Context, caller spiffeid.ID, id string) error {
	t, err := s.sent(ctx, caller, id)
	if err != nil {
		return err
	}
	if t.State != store.StateUploading {
		return badRequest("transfer %s is %s: only an upload in progress can be cancelled", id, t.State)
	}
	err = s.store.CancelUpload(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, store.ErrInvalid):
		return badRequest("%v", err)
	case err != nil:
		return fmt.Errorf("transfer: cancel %s: %w", id, err)
	}
	ev := transferEvent(audit.KindExpiry, caller.String(), t)
	ev.Detail = cancelDetail
	if _, err := s.Audit(ctx, ev); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "upload cancelled by its sender", "transfer", id, "bytes", t.Offset)
	return nil
}
