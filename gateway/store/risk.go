package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Risk baselines (issue 16): the per-identity record of gateway/risk, kept
// here so that it survives a restart and every replica of a cluster reads
// and updates the same one. The store does not interpret the record.

// RiskBaseline returns the risk record of id, nil when it has none. It is
// one indexed read outside a transaction, cheap enough for every decision.
func (s *Store) RiskBaseline(ctx context.Context, id string) ([]byte, error) {
	var state []byte
	err := s.db.QueryRowContext(ctx, `SELECT state FROM risk_baselines WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: risk baseline of %s: %w", id, err)
	}
	return state, nil
}

// UpdateRiskBaseline replaces the risk record of id by update(old) (old is
// nil when there is none) in one writing transaction: SQLite runs writers
// one at a time, and PostgreSQL runs it SERIALIZABLE and runs it again when
// another replica's update of the same record conflicted, so no update is
// lost. update may therefore run more than once; an error from it aborts
// the transaction and is returned. at is the time of the observation.
func (s *Store) UpdateRiskBaseline(ctx context.Context, id string, at time.Time, update func(old []byte) ([]byte, error)) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var old []byte
		err := tx.QueryRowContext(ctx, `SELECT state FROM risk_baselines WHERE id = ?`, id).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: risk baseline of %s: %w", id, err)
		}
		state, err := update(old)
		if err != nil {
			return err
		}
		if state == nil {
			return fmt.Errorf("store: risk baseline of %s: %w: an empty record", id, ErrInvalid)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO risk_baselines (id, state, updated) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated = excluded.updated`, id, state, at.UnixNano()); err != nil {
			return fmt.Errorf("store: risk baseline of %s: %w", id, err)
		}
		return nil
	})
}
