package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Governance: what the transfer core needs to carry out the obligations of
// its policy decisions (issue 14) — each transfer's obligations and counted
// downloads, legal holds on matters, four-eyes requests to add a recipient to
// a matter, and the destruction certificates of deleted transfers.

// Obligations are the conditions of the decision that allowed a transfer.
type Obligations struct {
	RetentionDays int       // how long the transfer is kept, as decided
	MaxDownloads  int       // counted downloads allowed per recipient; 0: no limit
	ExpiresAt     time.Time // when the sweeper deletes it; zero: never
}

// Expired reports whether the obligations' expiry has passed at now.
func (o Obligations) Expired(now time.Time) bool {
	return !o.ExpiresAt.IsZero() && !now.Before(o.ExpiresAt)
}

func nanosOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// ErrLimit is wrapped by every [*LimitError].
var ErrLimit = errors.New("store: download limit reached")

// LimitError says that a recipient has used every download a transfer allows.
type LimitError struct {
	Count, Max int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("store: download limit reached: %d of %d", e.Count, e.Max)
}

// Unwrap returns [ErrLimit].
func (e *LimitError) Unwrap() error { return ErrLimit }

// Download is one delivery a recipient asks for.
type Download struct {
	Recipient string
	// Counted: the delivery serves the ciphertext's first byte, so it counts
	// as one download. Other ranges never count.
	Counted bool
	// Max is the transfer's limit (0: none).
	Max int
	// ResumeWindow is how long after its last counted download a recipient
	// at its limit may still fetch ranges that do not start at byte 0 (to
	// finish a download cut short, or the other ranges of a parallel one).
	ResumeWindow time.Duration
	Now          time.Time
}

// CountDownload records download d of transfer id, atomically with the check
// of its limit: of concurrent counted deliveries past the limit exactly the
// allowed number succeed. It returns the recipient's counted downloads after
// this one, or a [*LimitError] when the limit is reached (a counted delivery
// at the limit, or an uncounted range after the resume window), or
// [ErrNotFound].
func (s *Store) CountDownload(ctx context.Context, id string, d Download) (int, error) {
	var count int
	err := s.write(ctx, func(tx *sql.Tx) error {
		var last sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT downloads, last_download FROM recipients WHERE transfer_id = ? AND recipient = ?`,
			id, d.Recipient).Scan(&count, &last)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s is not a recipient of transfer %s", ErrNotFound, d.Recipient, id)
		}
		if err != nil {
			return fmt.Errorf("store: count download: %w", err)
		}
		atLimit := d.Max > 0 && count >= d.Max
		if !d.Counted {
			if atLimit && (!last.Valid || d.Now.Sub(fromNanos(last.Int64)) > d.ResumeWindow) {
				return &LimitError{Count: count, Max: d.Max}
			}
			return nil
		}
		if atLimit {
			return &LimitError{Count: count, Max: d.Max}
		}
		count++
		_, err = tx.ExecContext(ctx, `UPDATE recipients SET downloads = ?, last_download = ? WHERE transfer_id = ? AND recipient = ?`,
			count, d.Now.UnixNano(), id, d.Recipient)
		if err != nil {
			return fmt.Errorf("store: count download: %w", err)
		}
		return nil
	})
	return count, err
}

// ExpiredTransfers returns up to limit transfers whose expiry is at or before
// now, in ID order after the ID after ("" for the first page), in any state.
func (s *Store) ExpiredTransfers(ctx context.Context, now time.Time, after string, limit int) ([]*Transfer, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.list(ctx, `WHERE expires_at > 0 AND expires_at <= ? AND id > ? ORDER BY id LIMIT ?`, now.UnixNano(), after, limit)
}

// ExpiredOf returns the transfers of matter whose expiry is at or before now,
// oldest first: under a legal hold, those it keeps.
func (s *Store) ExpiredOf(ctx context.Context, matter string, now time.Time) ([]*Transfer, error) {
	return s.list(ctx, `WHERE matter = ? AND expires_at > 0 AND expires_at <= ? ORDER BY created, id`, matter, now.UnixNano())
}

// Hold is a legal hold on a matter: while it stands nothing of the matter is
// deleted.
type Hold struct {
	Matter string
	By     string // SPIFFE ID of who placed it
	At     time.Time
	Reason string
}

// PlaceHold stores h, or returns [ErrExists] if the matter is already held.
func (s *Store) PlaceHold(ctx context.Context, h Hold) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO holds (matter, placed_by, placed_at, reason) VALUES (?, ?, ?, ?)`,
			h.Matter, h.By, h.At.UnixNano(), h.Reason)
		if isConstraint(err) {
			return fmt.Errorf("%w: matter %s is already on legal hold", ErrExists, h.Matter)
		}
		if err != nil {
			return fmt.Errorf("store: place hold: %w", err)
		}
		return nil
	})
}

// LiftHold removes the hold on matter and returns it, or [ErrNotFound].
func (s *Store) LiftHold(ctx context.Context, matter string) (Hold, error) {
	var h Hold
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if h, err = holdIn(ctx, tx, matter); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM holds WHERE matter = ?`, matter); err != nil {
			return fmt.Errorf("store: lift hold: %w", err)
		}
		return nil
	})
	return h, err
}

// HoldOn returns the hold on matter, or [ErrNotFound].
func (s *Store) HoldOn(ctx context.Context, matter string) (Hold, error) {
	var h Hold
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		h, err = holdIn(ctx, tx, matter)
		return err
	})
	return h, err
}

func holdIn(ctx context.Context, tx *sql.Tx, matter string) (Hold, error) {
	h := Hold{Matter: matter}
	var at int64
	err := tx.QueryRowContext(ctx, `SELECT placed_by, placed_at, reason FROM holds WHERE matter = ?`, matter).Scan(&h.By, &at, &h.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Hold{}, fmt.Errorf("%w: no legal hold on matter %s", ErrNotFound, matter)
	}
	if err != nil {
		return Hold{}, fmt.Errorf("store: hold: %w", err)
	}
	h.At = fromNanos(at)
	return h, nil
}

// Holds returns every standing hold, by matter.
func (s *Store) Holds(ctx context.Context) ([]Hold, error) {
	var out []Hold
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT matter, placed_by, placed_at, reason FROM holds ORDER BY matter`)
		if err != nil {
			return fmt.Errorf("store: holds: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var h Hold
			var at int64
			if err := rows.Scan(&h.Matter, &h.By, &at, &h.Reason); err != nil {
				return fmt.Errorf("store: holds: %w", err)
			}
			h.At = fromNanos(at)
			out = append(out, h)
		}
		return rows.Err()
	})
	return out, err
}

// MatterRequest is a four-eyes request to add a recipient to a matter:
// pending until a second person approves it, a grant afterwards.
type MatterRequest struct {
	ID          string // made by CreateMatterRequest if empty
	Matter      string
	Recipient   string // SPIFFE ID or trust domain
	RequestedBy string
	Reason      string
	Created     time.Time
	ApprovedBy  string    // empty while pending
	ApprovedAt  time.Time // zero while pending
}

// ErrSelfApproval: the approver of a four-eyes request is its requester.
var ErrSelfApproval = errors.New("store: a request cannot be approved by its requester")

// CreateMatterRequest stores a pending request, filling in r.ID.
func (s *Store) CreateMatterRequest(ctx context.Context, r *MatterRequest) error {
	if r.Matter == "" || r.Recipient == "" || r.RequestedBy == "" {
		return invalidf("matter request: matter, recipient and requester are required")
	}
	if r.ID == "" {
		r.ID = newID()[:16]
	}
	r.Created = r.Created.UTC()
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO matter_requests (id, matter, recipient, requested_by, reason, created) VALUES (?, ?, ?, ?, ?, ?)`,
			r.ID, r.Matter, r.Recipient, r.RequestedBy, r.Reason, r.Created.UnixNano())
		if isConstraint(err) {
			return fmt.Errorf("%w: matter request %s", ErrExists, r.ID)
		}
		if err != nil {
			return fmt.Errorf("store: matter request: %w", err)
		}
		return nil
	})
}

// ApproveMatterRequest approves pending request id by approver at now and
// returns it. It refuses an approver who is the requester
// ([ErrSelfApproval]), a request already approved ([ErrExists]) and an
// unknown one ([ErrNotFound]); the check and the approval are one
// transaction.
func (s *Store) ApproveMatterRequest(ctx context.Context, id, approver string, now time.Time) (MatterRequest, error) {
	var r MatterRequest
	err := s.write(ctx, func(tx *sql.Tx) error {
		rs, err := matterRequests(ctx, tx, `WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return fmt.Errorf("%w: no matter request %s", ErrNotFound, id)
		}
		r = rs[0]
		switch {
		case r.ApprovedBy != "":
			return fmt.Errorf("%w: request %s was approved by %s", ErrExists, id, r.ApprovedBy)
		case r.RequestedBy == approver:
			return fmt.Errorf("%w: %s requested %s", ErrSelfApproval, approver, id)
		}
		r.ApprovedBy, r.ApprovedAt = approver, now.UTC()
		_, err = tx.ExecContext(ctx, `UPDATE matter_requests SET approved_by = ?, approved_at = ? WHERE id = ? AND approved_by IS NULL`,
			approver, now.UnixNano(), id)
		if err != nil {
			return fmt.Errorf("store: approve matter request: %w", err)
		}
		return nil
	})
	return r, err
}

// MatterRequestByID returns request id, or [ErrNotFound].
func (s *Store) MatterRequestByID(ctx context.Context, id string) (MatterRequest, error) {
	rs, err := s.matterRequests(ctx, `WHERE id = ?`, id)
	if err != nil {
		return MatterRequest{}, err
	}
	if len(rs) == 0 {
		return MatterRequest{}, fmt.Errorf("%w: no matter request %s", ErrNotFound, id)
	}
	return rs[0], nil
}

// PendingMatterRequests returns the requests awaiting approval, oldest first.
func (s *Store) PendingMatterRequests(ctx context.Context) ([]MatterRequest, error) {
	return s.matterRequests(ctx, `WHERE approved_by IS NULL ORDER BY created, id`)
}

// Grants returns the approved requests of matter: its run-time recipients.
func (s *Store) Grants(ctx context.Context, matter string) ([]MatterRequest, error) {
	return s.matterRequests(ctx, `WHERE matter = ? AND approved_by IS NOT NULL ORDER BY approved_at, id`, matter)
}

func (s *Store) matterRequests(ctx context.Context, where string, args ...any) ([]MatterRequest, error) {
	var out []MatterRequest
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = matterRequests(ctx, tx, where, args...)
		return err
	})
	return out, err
}

func matterRequests(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]MatterRequest, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, matter, recipient, requested_by, reason, created, approved_by, approved_at
		FROM matter_requests `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: matter requests: %w", err)
	}
	defer rows.Close()
	var out []MatterRequest
	for rows.Next() {
		var r MatterRequest
		var created int64
		var by sql.NullString
		var at sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Matter, &r.Recipient, &r.RequestedBy, &r.Reason, &created, &by, &at); err != nil {
			return nil, fmt.Errorf("store: matter requests: %w", err)
		}
		r.Created = fromNanos(created)
		if by.Valid {
			r.ApprovedBy = by.String
		}
		if at.Valid {
			r.ApprovedAt = fromNanos(at.Int64)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Destruction is the record of a transfer the gateway deleted for good: who
// may fetch its certificate, and the certificate.
type Destruction struct {
	TransferID  string
	Sender      string
	Recipients  []string
	Matter      string
	Destroyed   time.Time
	AuditIndex  uint64 // the destruction's audit entry
	Certificate []byte // the signed statement, opaque to the store
}

// Destroy deletes the transfers of ds — metadata and ciphertext — and keeps
// each destruction record in its transfer's place, all in one transaction
// (the sweeper destroys a page of transfers at a time). A transfer already
// gone is skipped. Like DeleteTransfer it waits for uploads in progress on
// the transfers.
func (s *Store) Destroy(ctx context.Context, ds ...Destruction) error {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.TransferID
	}
	unlock, err := s.lockTransfers(ctx, ids...)
	if err != nil {
		return fmt.Errorf("store: destroy: %w", err)
	}
	defer unlock()
	err = s.write(ctx, func(tx *sql.Tx) error {
		for _, d := range ds {
			res, err := tx.ExecContext(ctx, `DELETE FROM transfers WHERE id = ?`, d.TransferID)
			if err != nil {
				return fmt.Errorf("store: destroy: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			rs, _ := json.Marshal(nonNil(d.Recipients))
			_, err = tx.ExecContext(ctx, `INSERT INTO destructions (transfer_id, sender, recipients, matter, destroyed, audit_index, certificate)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (transfer_id) DO UPDATE SET sender = excluded.sender,
				recipients = excluded.recipients, matter = excluded.matter, destroyed = excluded.destroyed,
				audit_index = excluded.audit_index, certificate = excluded.certificate`, d.TransferID, d.Sender, string(rs), d.Matter, d.Destroyed.UnixNano(), int64(d.AuditIndex), nonNilBytes(d.Certificate))
			if err != nil {
				return fmt.Errorf("store: destroy: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Metadata first: a crash here leaves orphan files, which Open removes.
	var errs []error
	for _, d := range ds {
		if s.s3 != nil {
			if err := s.removeCiphertext(ctx, d.TransferID); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		for _, p := range []string{s.partPath(d.TransferID), s.agePath(d.TransferID)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("store: transfer %s: %w", d.TransferID, err))
			}
		}
	}
	return errors.Join(append(errs, s.syncSpool())...)
}

// DestructionOf returns the destruction record of transfer id, or [ErrNotFound].
func (s *Store) DestructionOf(ctx context.Context, id string) (*Destruction, error) {
	d := &Destruction{TransferID: id}
	err := s.read(ctx, func(tx *sql.Tx) error {
		var rs string
		var destroyed, idx int64
		err := tx.QueryRowContext(ctx, `SELECT sender, recipients, matter, destroyed, audit_index, certificate FROM destructions WHERE transfer_id = ?`, id).
			Scan(&d.Sender, &rs, &d.Matter, &destroyed, &idx, &d.Certificate)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no destruction of transfer %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: destruction: %w", err)
		}
		d.Destroyed, d.AuditIndex = fromNanos(destroyed), uint64(idx)
		return json.Unmarshal([]byte(rs), &d.Recipients)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}
