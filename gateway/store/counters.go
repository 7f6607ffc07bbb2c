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

// revocationsChannel is the PostgreSQL NOTIFY channel of revocation changes.
const revocationsChannel = "lexgate_revocations"

// bumpRevocations moves the revocations version inside tx and, on
// PostgreSQL, notifies the replicas listening (NOTIFY is delivered when tx
// commits, never for a transaction rolled back).
func (s *Store) bumpRevocations(ctx context.Context, tx *sql.Tx) error {
	if err := bump(ctx, tx, counterRevocations); err != nil {
		return err
	}
	if s.pg != nil {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify('`+revocationsChannel+`', '')`); err != nil {
			return err
		}
	}
	return nil
}

// WatchRevocations calls changed whenever another replica may have recorded
// or lifted a revocation, so that it can act (close the live connections of
// a revoked identity) without waiting for a request. On PostgreSQL it
// LISTENs on a connection of its own and calls changed for each
// notification; listening is called once the LISTEN is in place (a change
// made before it is not notified: read the state then). It returns when ctx
// ends (nil) or the connection fails: the caller listens again. On SQLite,
// where one process owns the store and applies its own changes, it calls
// listening and waits for ctx.
func (s *Store) WatchRevocations(ctx context.Context, listening, changed func()) error {
	if s.pg == nil {
		listening()
		<-ctx.Done()
		return nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: watch revocations: %w", err)
	}
	defer func() {
		// The LISTEN must not outlive this watch in the pool.
		conn.Raw(func(dc any) error { return dc.(*pgConn).Close() })
		conn.Close()
	}()
	if _, err := conn.ExecContext(ctx, `LISTEN `+revocationsChannel); err != nil {
		return fmt.Errorf("store: watch revocations: %w", err)
	}
	listening()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*pgConn).c.Conn()
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				return err
			}
			changed()
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("store: watch revocations: %w", err)
}
