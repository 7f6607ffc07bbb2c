package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/store"
)

// verifyStored re-hashes the whole stored ciphertext f of t before a delivery
// and compares it with the SHA-256 of the signed manifest. On a mismatch (a
// bit flipped on disk, a file replaced behind the store's back) the transfer is
// quarantined for good, the quarantine is audited, and the error wraps
// ErrHashMismatch: nothing is sent.
//
// This is the cheapest sound check: one sequential read of the file per
// download, from the page cache for a recent upload, and nothing stored beside
// the hash the manifest already carries. OpenFrom runs it for deliveries from
// byte 0 only (every download starts there; parallel and resumed ranges from
// elsewhere do not pay again); recipients verify the hash and the signature of
// the whole file themselves (lex receive).
func (s *Service) verifyStored(ctx context.Context, caller string, t *store.Transfer, f *os.File) error {
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(f, 0, t.CiphertextSize+1))
	if err != nil {
		return fmt.Errorf("transfer: read stored ciphertext of %s: %w", t.ID, err)
	}
	if n == t.CiphertextSize && hex.EncodeToString(h.Sum(nil)) == t.CiphertextSHA256 {
		return nil
	}
	s.log.ErrorContext(ctx, "stored ciphertext differs from its signed manifest; transfer quarantined", "transfer", t.ID, "bytes", n)
	if err := s.store.Quarantine(ctx, t.ID); err != nil {
		return fmt.Errorf("transfer: quarantine %s: %w", t.ID, err)
	}
	ev := transferEvent(audit.KindQuarantined, caller, t)
	ev.Detail = "the stored ciphertext no longer matches the signed manifest's SHA-256; found at delivery"
	s.Audit(ctx, ev)
	return fmt.Errorf("%w: the stored ciphertext of %s changed since its upload; the transfer is quarantined", ErrHashMismatch, t.ID)
}
