package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Recent uploads: the memory of the SFTP front (issue 17) of the uploads that
// finished within its upload window, kept here so that it survives a restart
// and is shared by the replicas of a cluster. Each row is a file as a client
// sees it in its outbox directory — its size, its time (the time the upload
// finished, or one the client set), the SHA-256 of its content and the
// transfer it was delivered as — until it expires.
//
// The duplicate check is race-free: [Store.CreateReadyUpload] looks for an
// identical upload and records this one in the transaction that creates the
// transfer. On SQLite that transaction is the only writer; on PostgreSQL it
// is serializable, so of two identical uploads finishing at once on two
// replicas one commits and the other, retried, finds it and stores nothing.
// An upload is reported a duplicate only of a transfer that is committed, so
// none is lost.

// recentUploadsSchema is schema version 10. The same text serves SQLite and
// PostgreSQL; times are Unix nanoseconds.
const recentUploadsSchema = `
-- Issue 17: uploads the SFTP front finished within its upload window, by
-- account, directory and name, until expires.
CREATE TABLE recent_uploads (
	account  TEXT NOT NULL,
	dir      TEXT NOT NULL,
	name     TEXT NOT NULL,
	size     BIGINT NOT NULL,
	sha256   TEXT NOT NULL, -- lowercase hex SHA-256 of the content uploaded
	transfer TEXT NOT NULL, -- the transfer it was delivered as (or repeats)
	modified BIGINT NOT NULL,
	finished BIGINT NOT NULL,
	expires  BIGINT NOT NULL,
	PRIMARY KEY (account, dir, name)
);
CREATE INDEX recent_uploads_expires ON recent_uploads (expires);
`

// RecentUpload is an upload finished within the window, as the store keeps it.
type RecentUpload struct {
	Account string // the SFTP account that uploaded it
	Dir     string // its outbox directory (the recipient's name)
	Name    string // its file name
	Size    int64
	// SHA256 is the lowercase hex SHA-256 of the content as uploaded.
	SHA256 string
	// Transfer is the transfer the upload was delivered as, or, for an
	// identical re-upload, the transfer it repeats.
	Transfer string
	Modified time.Time // the time the file shows: its finish, or a time the client set
	Finished time.Time
	Expires  time.Time // after it, the upload is forgotten
}

// ErrDuplicateUpload is wrapped by the [*DuplicateUploadError] of
// [Store.CreateReadyUpload].
var ErrDuplicateUpload = errors.New("store: an identical upload was delivered within the window")

// DuplicateUploadError is returned by [Store.CreateReadyUpload] when an
// identical upload finished within the window: nothing was stored.
type DuplicateUploadError struct {
	Of RecentUpload // the upload it repeats, with the transfer delivered
}

func (e *DuplicateUploadError) Error() string {
	return fmt.Sprintf("%v: %s/%s repeats transfer %s", ErrDuplicateUpload, e.Of.Dir, e.Of.Name, e.Of.Transfer)
}

func (e *DuplicateUploadError) Unwrap() error { return ErrDuplicateUpload }

func (u RecentUpload) check() error {
	if u.Account == "" || u.Dir == "" || u.Name == "" || u.Size < 0 || !isSHA256Hex(u.SHA256) || u.Expires.IsZero() {
		return invalidf("recent upload %q/%q/%q: want an account, a directory, a name, a size, a hex SHA-256 and an expiry", u.Account, u.Dir, u.Name)
	}
	return nil
}

// CreateReadyUpload is [Store.CreateReady] for an upload the SFTP front
// finished: in the transaction that creates t it looks for an upload of
// u.Account in u.Dir, named u.Name or one of aliases, with u's size and
// SHA-256, that has not expired at now. If there is one it stores nothing
// (the staged file is removed) and returns a [*DuplicateUploadError] naming
// it; otherwise it creates t and records u, with u.Transfer = t.ID, in place
// of any earlier upload of that name.
func (s *Store) CreateReadyUpload(ctx context.Context, t *Transfer, path string, now time.Time, u RecentUpload, aliases ...string) error {
	if err := u.check(); err != nil {
		os.Remove(path)
		return err
	}
	claim := func(tx *sql.Tx) error {
		d, err := findUpload(ctx, tx, u, aliases, now)
		if err == nil {
			return &DuplicateUploadError{Of: d}
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		u.Transfer = t.ID
		return putUpload(ctx, tx, u)
	}
	return s.createReady(ctx, t, path, now, claim)
}

// FindUpload returns the upload of u.Account in u.Dir, named u.Name or one of
// aliases, with u's size and SHA-256, that has not expired at now; none is
// [ErrNotFound]. It is the cheap check before an upload is sealed;
// [Store.CreateReadyUpload] makes the authoritative one.
func (s *Store) FindUpload(ctx context.Context, u RecentUpload, now time.Time, aliases ...string) (RecentUpload, error) {
	var d RecentUpload
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = findUpload(ctx, tx, u, aliases, now)
		return err
	})
	return d, err
}

// RecordUpload records u (an identical re-upload acknowledged without a new
// transfer), in place of any earlier upload of its name.
func (s *Store) RecordUpload(ctx context.Context, u RecentUpload) error {
	if err := u.check(); err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error { return putUpload(ctx, tx, u) })
}

// ForgetUpload deletes the record of u's name if it still names
// u.Transfer: the transfer could not be kept, so a retry must be delivered.
func (s *Store) ForgetUpload(ctx context.Context, u RecentUpload) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM recent_uploads WHERE account = ? AND dir = ? AND name = ? AND transfer = ?`,
			u.Account, u.Dir, u.Name, u.Transfer); err != nil {
			return fmt.Errorf("store: forget recent upload %s/%s: %w", u.Dir, u.Name, err)
		}
		return nil
	})
}

// RecentUploadOf returns the upload account finished in dir under name that
// has not expired at now; none is [ErrNotFound].
func (s *Store) RecentUploadOf(ctx context.Context, account, dir, name string, now time.Time) (RecentUpload, error) {
	return recentUploadOf(ctx, s.db, account, dir, name, now)
}

// recentUploadOf is RecentUploadOf through q: the database, or a
// transaction.
func recentUploadOf(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, account, dir, name string, now time.Time) (RecentUpload, error) {
	u, err := scanUpload(q.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM recent_uploads
		WHERE account = ? AND dir = ? AND name = ? AND expires > ?`, account, dir, name, now.UnixNano()))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("%w: recent upload %s/%s of %s", ErrNotFound, dir, name, account)
	}
	return u, err
}

// RecentUploads lists the uploads account finished in dir that have not
// expired at now, by name.
func (s *Store) RecentUploads(ctx context.Context, account, dir string, now time.Time) ([]RecentUpload, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+uploadColumns+` FROM recent_uploads
		WHERE account = ? AND dir = ? AND expires > ?`, account, dir, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: recent uploads: %w", err)
	}
	defer rows.Close()
	var out []RecentUpload
	for rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: recent uploads: %w", err)
	}
	slices.SortFunc(out, func(a, b RecentUpload) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// RenameUpload moves the upload account finished in dir under from to the
// name to in toDir (replacing any there), keeping its expiry. An upload
// that is not there or expired at now is [ErrNotFound].
func (s *Store) RenameUpload(ctx context.Context, account, dir, from, toDir, to string, now time.Time) error {
	if toDir == "" || to == "" {
		return invalidf("rename of recent upload %s/%s: empty target", dir, from)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		u, err := recentUploadOf(ctx, tx, account, dir, from, now)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM recent_uploads WHERE account = ? AND dir = ? AND name = ?`,
			account, dir, from); err != nil {
			return fmt.Errorf("store: rename recent upload: %w", err)
		}
		u.Dir, u.Name = toDir, to
		return putUpload(ctx, tx, u)
	})
}

// SetUploadTime sets the time the upload account finished in dir under name
// shows (a client's SETSTAT). An upload that is not there or expired at now
// is [ErrNotFound].
func (s *Store) SetUploadTime(ctx context.Context, account, dir, name string, mod, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE recent_uploads SET modified = ?
			WHERE account = ? AND dir = ? AND name = ? AND expires > ?`, mod.UnixNano(), account, dir, name, now.UnixNano())
		if err != nil {
			return fmt.Errorf("store: set time of recent upload: %w", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return fmt.Errorf("store: set time of recent upload: %w", err)
		} else if n == 0 {
			return fmt.Errorf("%w: recent upload %s/%s of %s", ErrNotFound, dir, name, account)
		}
		return nil
	})
}

// SweepUploads deletes the uploads expired at now and returns how many. Any
// replica may run it: the reads above never return an expired upload, so a
// late sweep only costs space.
func (s *Store) SweepUploads(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM recent_uploads WHERE expires <= ?`, now.UnixNano())
		if err != nil {
			return fmt.Errorf("store: sweep recent uploads: %w", err)
		}
		n, err = r.RowsAffected()
		return err
	})
	return int(n), err
}

const uploadColumns = `account, dir, name, size, sha256, transfer, modified, finished, expires`

// findUpload is FindUpload inside tx.
func findUpload(ctx context.Context, tx *sql.Tx, u RecentUpload, aliases []string, now time.Time) (RecentUpload, error) {
	for _, name := range append([]string{u.Name}, aliases...) {
		d, err := scanUpload(tx.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM recent_uploads
			WHERE account = ? AND dir = ? AND name = ? AND size = ? AND sha256 = ? AND expires > ?`,
			u.Account, u.Dir, name, u.Size, strings.ToLower(u.SHA256), now.UnixNano()))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		return d, err
	}
	return RecentUpload{}, fmt.Errorf("%w: no identical upload of %s/%s", ErrNotFound, u.Dir, u.Name)
}

// putUpload records u in tx, in place of any upload of its name.
func putUpload(ctx context.Context, tx *sql.Tx, u RecentUpload) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO recent_uploads (`+uploadColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account, dir, name) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,
			transfer = excluded.transfer, modified = excluded.modified, finished = excluded.finished,
			expires = excluded.expires`,
		u.Account, u.Dir, u.Name, u.Size, strings.ToLower(u.SHA256), u.Transfer,
		nanosOrZero(u.Modified), nanosOrZero(u.Finished), u.Expires.UnixNano())
	if err != nil {
		return fmt.Errorf("store: record recent upload %s/%s: %w", u.Dir, u.Name, err)
	}
	return nil
}

func scanUpload(row interface{ Scan(...any) error }) (RecentUpload, error) {
	var u RecentUpload
	var mod, fin, exp int64
	err := row.Scan(&u.Account, &u.Dir, &u.Name, &u.Size, &u.SHA256, &u.Transfer, &mod, &fin, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return u, err
	}
	if err != nil {
		return u, fmt.Errorf("store: recent upload: %w", err)
	}
	u.Modified, u.Finished, u.Expires = fromNanos(mod), fromNanos(fin), fromNanos(exp)
	return u, nil
}
