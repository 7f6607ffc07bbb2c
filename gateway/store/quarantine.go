package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Quarantine takes a ready transfer out of delivery for good, when its stored
// ciphertext no longer matches its hash (a flipped bit on disk, a file
// replaced behind the store's back). The state changes first, then the bytes
// are deleted, so a crash in between leaves a quarantined transfer whose
// file Open never serves. Quarantining a transfer that is already
// quarantined is a no-op; one that is not ready is an error.
func (s *Store) Quarantine(ctx context.Context, id string) error {
	_, err := s.QuarantineOnce(ctx, id)
	return err
}

// QuarantineOnce is [Store.Quarantine] that also reports whether this call
// quarantined the transfer (first) or found it quarantined already, by any
// replica: of concurrent quarantines exactly one is first.
func (s *Store) QuarantineOnce(ctx context.Context, id string) (first bool, err error) {
	if !validID(id) {
		return false, fmt.Errorf("%w: transfer %q", ErrNotFound, id)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		first = false
		var state State
		if err := tx.QueryRowContext(ctx, `SELECT state FROM transfers WHERE id = ?`, id).Scan(&state); err != nil {
			if err == sql.ErrNoRows {
				return fmt.Errorf("%w: transfer %s", ErrNotFound, id)
			}
			return fmt.Errorf("store: transfer %s: %w", id, err)
		}
		switch state {
		case StateQuarantined:
			return nil
		case StateReady:
		default:
			return fmt.Errorf("store: transfer %s is %s, only a ready transfer is quarantined after the fact", id, state)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE transfers SET state = 'quarantined' WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: quarantine transfer %s: %w", id, err)
		}
		first = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return first, s.removeCiphertext(ctx, id)
}
