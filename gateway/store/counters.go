package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Shared counters (issue 19): small values every replica of a cluster reads
// from the store instead of keeping them per process.

// Counter names.
const (
	// counterRevocations is bumped by every revocation and lifting.
	counterRevocations = "revocations"
	// counterSIEMAudit is the next audit index the SIEM forwarder sends.
	counterSIEMAudit = "siem.audit_next"
)

// bump adds one to the counter name inside tx.
func bump(ctx context.Context, tx *sql.Tx, name string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO shared_counters (name, value) VALUES (?, 1)
ON CONFLICT (name) DO UPDATE SET value = shared_counters.value + 1`, name)
	return err
}

// counter reads the counter name, 0 when it was never set. It is one indexed
// read outside a transaction: cheap enough to run on every request.
func (s *Store) counter(ctx context.Context, name string) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT value FROM shared_counters WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: counter %s: %w", name, err)
	}
	return v, nil
}

// RevocationsVersion changes whenever a revocation is recorded or lifted, on
// any replica: a replica whose copy of the deny list was read at another
// version must read [Store.Revocations] again. The version is written in
// the transaction of the change, so once Revoke returns every later call
// sees the new version.
func (s *Store) RevocationsVersion(ctx context.Context) (int64, error) {
	return s.counter(ctx, counterRevocations)
}

// SIEMAuditCursor returns the next audit log index the SIEM forwarder of the
// cluster is to send (0: from the start).
func (s *Store) SIEMAuditCursor(ctx context.Context) (uint64, error) {
	v, err := s.counter(ctx, counterSIEMAudit)
	return uint64(v), err
}

// SetSIEMAuditCursor records that the audit entries before next were
// forwarded. The forwarder holding the SIEM lock is its only writer.
func (s *Store) SetSIEMAuditCursor(ctx context.Context, next uint64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO shared_counters (name, value) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value`, counterSIEMAudit, int64(next))
		if err != nil {
			return fmt.Errorf("store: siem cursor: %w", err)
		}
		return nil
	})
}
