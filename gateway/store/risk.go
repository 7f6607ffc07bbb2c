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
	if len(state) == 0 { // a row created to be locked, not yet written
		return nil, nil
	}
	return state, nil
}

// UpdateRiskBaseline replaces the risk record of id by update(old) (old is
// nil when there is none) atomically, so that no update is lost. On SQLite
// it runs in a writing transaction (writers run one at a time). On
// PostgreSQL the replicas' updates of one record queue on its row lock
// instead of aborting one another, as SERIALIZABLE would when an identity's
// downloads are counted by several replicas at once: the transaction runs
// READ COMMITTED, makes sure the row exists, and reads it FOR UPDATE, which
// waits for the holder and returns the latest committed record. update may
// run more than once (a transaction retried after a deadlock or a lost
// connection); an error from it aborts the transaction and is returned. at
// is the time of the observation.
func (s *Store) UpdateRiskBaseline(ctx context.Context, id string, at time.Time, update func(old []byte) ([]byte, error)) error {
	if s.pg == nil {
		return s.write(ctx, func(tx *sql.Tx) error { return updateRiskBaseline(ctx, tx, id, at, update, "") })
	}
	return s.pg.retry(ctx, func() error {
		return s.inTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}, func(tx *sql.Tx) error {
			return updateRiskBaseline(ctx, tx, id, at, update, " FOR UPDATE")
		})
	})
}

// updateRiskBaseline is UpdateRiskBaseline's transaction; lock is appended
// to the read of the row. A row with an empty state is one created to be
// locked: no record yet.
func updateRiskBaseline(ctx context.Context, tx *sql.Tx, id string, at time.Time, update func([]byte) ([]byte, error), lock string) error {
	read := func() ([]byte, error) {
		var old []byte
		err := tx.QueryRowContext(ctx, `SELECT state FROM risk_baselines WHERE id = ?`+lock, id).Scan(&old)
		return old, err
	}
	old, err := read()
	if errors.Is(err, sql.ErrNoRows) && lock != "" {
		// Create the row to lock it: a concurrent creator's insert makes
		// this one wait for its commit and do nothing.
		if _, err := tx.ExecContext(ctx, `INSERT INTO risk_baselines (id, state, updated) VALUES (?, ?, 0)
ON CONFLICT (id) DO NOTHING`, id, []byte{}); err != nil {
			return fmt.Errorf("store: risk baseline of %s: %w", id, err)
		}
		old, err = read()
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: risk baseline of %s: %w", id, err)
	}
	if len(old) == 0 {
		old = nil
	}
	state, err := update(old)
	if err != nil {
		return err
	}
	if len(state) == 0 {
		return fmt.Errorf("store: risk baseline of %s: %w: an empty record", id, ErrInvalid)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO risk_baselines (id, state, updated) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated = excluded.updated`, id, state, at.UnixNano()); err != nil {
		return fmt.Errorf("store: risk baseline of %s: %w", id, err)
	}
	return nil
}
