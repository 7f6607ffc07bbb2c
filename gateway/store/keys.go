package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// PutKeys registers the age recipients (public keys) of the party id,
// replacing any earlier registration, and records now as the registration
// time. The store does not parse the recipients; the caller validates them.
func (s *Store) PutKeys(ctx context.Context, id string, recipients []string, now time.Time) error {
	if id == "" {
		return invalidf("keys: empty id")
	}
	if len(recipients) == 0 {
		return invalidf("keys: no recipients for %s", id)
	}
	enc, err := json.Marshal(recipients)
	if err != nil {
		return fmt.Errorf("store: keys: %w", err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO keys (id, recipients, updated) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET recipients = excluded.recipients, updated = excluded.updated`,
			id, string(enc), now.UnixNano())
		if err != nil {
			return fmt.Errorf("store: put keys: %w", err)
		}
		return nil
	})
}

// Keys returns the age recipients registered for id and when they were
// registered, or [ErrNotFound].
func (s *Store) Keys(ctx context.Context, id string) (recipients []string, updated time.Time, err error) {
	var enc string
	var ns int64
	err = s.db.QueryRowContext(ctx, `SELECT recipients, updated FROM keys WHERE id = ?`, id).Scan(&enc, &ns)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("%w: keys for %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("store: keys: %w", err)
	}
	if err := json.Unmarshal([]byte(enc), &recipients); err != nil {
		return nil, time.Time{}, fmt.Errorf("store: keys for %s: %w", id, err)
	}
	return recipients, fromNanos(ns), nil
}

// fromNanos turns stored Unix nanoseconds back into a UTC time.
func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }
