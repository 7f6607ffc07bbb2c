package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The admin plane's state (issue 16): run-time revocations of SPIFFE IDs and
// transfers quarantined by an admin. Both survive a restart.

// Revocation is a SPIFFE ID revoked at run time.
type Revocation struct {
	ID     string // SPIFFE ID
	By     string // the admin who revoked it
	At     time.Time
	Reason string
}

// Revoke records a revocation; [ErrExists] if id is already revoked.
func (s *Store) Revoke(ctx context.Context, r Revocation) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO revocations (id, revoked_by, revoked_at, reason) VALUES (?, ?, ?, ?)`,
			r.ID, r.By, r.At.UnixNano(), r.Reason)
		if isConstraint(err) {
			return fmt.Errorf("%w: %s is already revoked", ErrExists, r.ID)
		}
		if err == nil {
			err = s.bumpRevocations(ctx, tx)
		}
		if err != nil {
			return fmt.Errorf("store: revoke: %w", err)
		}
		return nil
	})
}

// Unrevoke deletes the revocation of id and returns it, or [ErrNotFound].
func (s *Store) Unrevoke(ctx context.Context, id string) (Revocation, error) {
	var r Revocation
	err := s.write(ctx, func(tx *sql.Tx) error {
		var at int64
		err := tx.QueryRowContext(ctx, `SELECT id, revoked_by, revoked_at, reason FROM revocations WHERE id = ?`, id).
			Scan(&r.ID, &r.By, &at, &r.Reason)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s is not revoked", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: unrevoke: %w", err)
		}
		r.At = time.Unix(0, at).UTC()
		if _, err := tx.ExecContext(ctx, `DELETE FROM revocations WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: unrevoke: %w", err)
		}
		if err := s.bumpRevocations(ctx, tx); err != nil {
			return fmt.Errorf("store: unrevoke: %w", err)
		}
		return nil
	})
	return r, err
}

// Revocations lists the run-time revocations, by ID.
func (s *Store) Revocations(ctx context.Context) ([]Revocation, error) {
	var out []Revocation
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, revoked_by, revoked_at, reason FROM revocations ORDER BY id`)
		if err != nil {
			return fmt.Errorf("store: revocations: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r Revocation
			var at int64
			if err := rows.Scan(&r.ID, &r.By, &at, &r.Reason); err != nil {
				return fmt.Errorf("store: revocations: %w", err)
			}
			r.At = time.Unix(0, at).UTC()
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// Selector picks transfers for a quarantine or a release: every set field
// must match; at least one must be set.
type Selector struct {
	Transfer string    // a transfer ID
	Identity string    // a SPIFFE ID: its transfers as sender or as recipient
	Matter   string    // a matter
	Since    time.Time // created at or after
	Until    time.Time // created before
}

// Empty reports whether sel selects nothing in particular (which would be
// every transfer).
func (sel Selector) Empty() bool { return sel == Selector{} }

// where is sel as an SQL condition on transfers t, with its arguments.
func (sel Selector) where() (string, []any) {
	var conds []string
	var args []any
	add := func(c string, a ...any) { conds = append(conds, c); args = append(args, a...) }
	if sel.Transfer != "" {
		add("t.id = ?", sel.Transfer)
	}
	if sel.Identity != "" {
		add("(t.sender = ? OR EXISTS (SELECT 1 FROM recipients r WHERE r.transfer_id = t.id AND r.recipient = ?))", sel.Identity, sel.Identity)
	}
	if sel.Matter != "" {
		add("t.matter = ?", sel.Matter)
	}
	if !sel.Since.IsZero() {
		add("t.created >= ?", sel.Since.UnixNano())
	}
	if !sel.Until.IsZero() {
		add("t.created < ?", sel.Until.UnixNano())
	}
	return strings.Join(conds, " AND "), args
}

// QuarantineRecord is a transfer an admin quarantined.
type QuarantineRecord struct {
	Transfer string
	Sender   string
	Matter   string
	By       string
	At       time.Time
	Reason   string
}

// AdminQuarantine quarantines the transfers sel picks that are not quarantined
// yet, and returns their IDs.
func (s *Store) AdminQuarantine(ctx context.Context, sel Selector, by string, at time.Time, reason string) ([]string, error) {
	if sel.Empty() {
		return nil, errors.New("store: quarantine: an empty selector would pick every transfer")
	}
	var ids []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		w, args := sel.where()
		var err error
		ids, err = queryIDs(ctx, tx, `SELECT t.id FROM transfers t WHERE `+w+
			` AND NOT EXISTS (SELECT 1 FROM admin_quarantines q WHERE q.transfer_id = t.id) ORDER BY t.created, t.id`, args)
		if err != nil {
			return fmt.Errorf("store: quarantine: %w", err)
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `INSERT INTO admin_quarantines (transfer_id, quarantined_by, quarantined_at, reason) VALUES (?, ?, ?, ?)`,
				id, by, at.UnixNano(), reason); err != nil {
				return fmt.Errorf("store: quarantine %s: %w", id, err)
			}
		}
		return nil
	})
	return ids, err
}

// AdminRelease lifts the admin quarantine of the transfers sel picks and returns
// their IDs.
func (s *Store) AdminRelease(ctx context.Context, sel Selector) ([]string, error) {
	if sel.Empty() {
		return nil, errors.New("store: release: an empty selector would pick every transfer")
	}
	var ids []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		w, args := sel.where()
		var err error
		ids, err = queryIDs(ctx, tx, `SELECT t.id FROM transfers t JOIN admin_quarantines q ON q.transfer_id = t.id WHERE `+w+` ORDER BY t.created, t.id`, args)
		if err != nil {
			return fmt.Errorf("store: release: %w", err)
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM admin_quarantines WHERE transfer_id = ?`, id); err != nil {
				return fmt.Errorf("store: release %s: %w", id, err)
			}
		}
		return nil
	})
	return ids, err
}

// AdminQuarantined reports whether an admin quarantined transfer id.
func (s *Store) AdminQuarantined(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM admin_quarantines WHERE transfer_id = ?`, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: quarantined %s: %w", id, err)
	}
	return n > 0, nil
}

// AdminQuarantines lists the admin-quarantined transfers, oldest first.
func (s *Store) AdminQuarantines(ctx context.Context) ([]QuarantineRecord, error) {
	var out []QuarantineRecord
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT q.transfer_id, coalesce(t.sender, ''), coalesce(t.matter, ''), q.quarantined_by, q.quarantined_at, q.reason
			FROM admin_quarantines q LEFT JOIN transfers t ON t.id = q.transfer_id ORDER BY q.quarantined_at, q.transfer_id`)
		if err != nil {
			return fmt.Errorf("store: quarantines: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var q QuarantineRecord
			var at int64
			if err := rows.Scan(&q.Transfer, &q.Sender, &q.Matter, &q.By, &at, &q.Reason); err != nil {
				return fmt.Errorf("store: quarantines: %w", err)
			}
			q.At = time.Unix(0, at).UTC()
			out = append(out, q)
		}
		return rows.Err()
	})
	return out, err
}

func queryIDs(ctx context.Context, tx *sql.Tx, q string, args []any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// PutKeyRegistration stores the signed registration of id's keys (opaque
// bytes), replacing the previous one.
func (s *Store) PutKeyRegistration(ctx context.Context, id string, reg []byte) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_registrations (id, registration) VALUES (?, ?)
			ON CONFLICT (id) DO UPDATE SET registration = excluded.registration`, id, reg); err != nil {
			return fmt.Errorf("store: key registration: %w", err)
		}
		return nil
	})
}

// DeleteKeyRegistration forgets id's signed registration (its keys were
// registered without one).
func (s *Store) DeleteKeyRegistration(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM key_registrations WHERE id = ?`, id); err != nil {
			return fmt.Errorf("store: key registration: %w", err)
		}
		return nil
	})
}

// KeyRegistration returns id's signed registration, or [ErrNotFound].
func (s *Store) KeyRegistration(ctx context.Context, id string) ([]byte, error) {
	var reg []byte
	err := s.db.QueryRowContext(ctx, `SELECT registration FROM key_registrations WHERE id = ?`, id).Scan(&reg)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: key registration: %w", err)
	}
	return reg, nil
}
