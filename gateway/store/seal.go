package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding"
	"errors"
	"fmt"
	"time"
)

// Seal is the final manifest of a streamed transfer: one created with an empty
// CiphertextSHA256 so that its sender could upload while it was still
// encrypting, and completed by [Store.Seal] once every byte had arrived.
type Seal struct {
	CiphertextSHA256 string // lowercase hex: what the sender says it sent
	ManifestHash     string // lowercase hex SHA-256 of the final signed manifest
	Manifest         []byte // the final signed manifest, stored as the transfer's manifest
}

// ErrSealIncomplete is returned by [Store.Seal] for a streamed transfer whose
// ciphertext has not all arrived; the *OffsetError it comes with says how much has.
var ErrSealIncomplete = errors.New("store: upload incomplete")

// Seal completes the streamed transfer id. Every byte must have arrived (its
// offset equals CiphertextSize, else an [*OffsetError] wrapping
// [ErrSealIncomplete]). The SHA-256 of the bytes received is compared with
// seal.CiphertextSHA256: on a match the transfer becomes [StateReady], its
// manifest, manifest hash and ciphertext hash replaced by seal's; otherwise it is
// quarantined, its bytes deleted, and the error is [ErrHashMismatch]. Sealing a
// ready transfer again with the same manifest hash is a no-op, so a client may
// retry; any other seal of a transfer that is not a streamed upload is
// [ErrInvalid].
func (s *Store) Seal(ctx context.Context, id string, seal Seal, now time.Time) error {
	if !validID(id) {
		return fmt.Errorf("%w: transfer %q", ErrNotFound, id)
	}
	if !isSHA256Hex(seal.CiphertextSHA256) || !isSHA256Hex(seal.ManifestHash) || len(seal.Manifest) == 0 {
		return invalidf("seal of transfer %s: want hex SHA-256 hashes and a manifest", id)
	}
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return fmt.Errorf("store: seal transfer %s: %w", id, err)
	}
	defer unlock()
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return err
	}
	var manifestHash string
	if err := s.db.QueryRowContext(ctx, `SELECT manifest_hash FROM transfers WHERE id = ?`, id).Scan(&manifestHash); err != nil {
		return fmt.Errorf("store: seal transfer %s: %w", id, err)
	}
	switch {
	case u.state == StateReady && manifestHash == seal.ManifestHash:
		return nil // a retried seal
	case u.state == StateQuarantined:
		return fmt.Errorf("%w: transfer %s is quarantined", ErrHashMismatch, id)
	case u.state != StateUploading || u.wantHash != "":
		return invalidf("transfer %s is %s and was not created to be sealed", id, u.state)
	case u.received != u.size:
		return fmt.Errorf("%w: %w", ErrSealIncomplete, &OffsetError{Expected: u.received, Got: u.size})
	}
	if s.s3 != nil {
		return s.s3Seal(context.WithoutCancel(ctx), u, seal, now)
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.hashState); err != nil {
		return fmt.Errorf("store: transfer %s: restore hash state: %w", id, err)
	}
	f, err := s.openPart(id, u.received)
	if errors.Is(err, errShortPart) {
		_, err = s.restart(ctx, u, err)
		return fmt.Errorf("%w: %w", ErrSealIncomplete, err)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	u.wantHash = seal.CiphertextSHA256
	return s.finish(context.WithoutCancel(ctx), u, f, h, now, &seal)
}

// CancelUpload deletes transfer id, metadata and spool bytes, provided it is
// still uploading: a ready or quarantined transfer is [ErrInvalid] and stays.
// It waits for an upload in progress on the transfer to finish first.
func (s *Store) CancelUpload(ctx context.Context, id string) error {
	if !validID(id) {
		return fmt.Errorf("%w: transfer %q", ErrNotFound, id)
	}
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return fmt.Errorf("store: cancel transfer %s: %w", id, err)
	}
	defer unlock()
	err = s.write(ctx, func(tx *sql.Tx) error {
		var state State
		err := tx.QueryRowContext(ctx, `SELECT state FROM transfers WHERE id = ?`, id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: transfer %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: cancel transfer %s: %w", id, err)
		}
		if state != StateUploading {
			return invalidf("transfer %s is %s: only an upload in progress can be cancelled", id, state)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM transfers WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: cancel transfer %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Metadata first, as in DeleteTransfer: a crash leaves orphan files only.
	return s.removeCiphertext(ctx, id)
}
