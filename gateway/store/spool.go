package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The spool holds one file per transfer: <id>.part while uploading,
// <id>.age once ready.
const (
	partExt = ".part"
	ageExt  = ".age"
)

func (s *Store) partPath(id string) string { return filepath.Join(s.spool, id+partExt) }
func (s *Store) agePath(id string) string  { return filepath.Join(s.spool, id+ageExt) }

// openPart opens the transfer's .part file positioned at the durable
// offset, first cutting off bytes past it left by a crash between fsync
// and commit.
func (s *Store) openPart(id string, received int64) (*os.File, error) {
	return s.openPartKeep(id, received, false)
}

// openPartKeep is openPart, but with keepTail it leaves the bytes past the
// durable offset alone: they hold the ranges of a parallel upload.
func (s *Store) openPartKeep(id string, received int64, keepTail bool) (*os.File, error) {
	f, err := os.OpenFile(s.partPath(id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: transfer %s: %w", id, err)
	}
	if err := positionPart(f, received, keepTail); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: transfer %s: %w", id, err)
	}
	if received == 0 {
		// The file may be new: make its name durable before any offset
		// that relies on it is committed.
		if err := s.syncSpool(); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// errShortPart means a .part file holds fewer bytes than its recorded
// offset: the spool lost data the metadata counts on.
var errShortPart = errors.New("spool file shorter than recorded offset")

func positionPart(f *os.File, received int64, keepTail bool) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	switch size := fi.Size(); {
	case size < received:
		return fmt.Errorf("%w: %d bytes, %d recorded", errShortPart, size, received)
	case size > received && !keepTail:
		if err := f.Truncate(received); err != nil {
			return err
		}
	}
	_, err = f.Seek(received, io.SeekStart)
	return err
}

// publish renames the complete .part to .age, durably.
func (s *Store) publish(id string) error {
	if err := os.Rename(s.partPath(id), s.agePath(id)); err != nil {
		return fmt.Errorf("store: transfer %s: %w", id, err)
	}
	return s.syncSpool()
}

// unpublish undoes publish after the metadata could not be updated.
func (s *Store) unpublish(id string) {
	if os.Rename(s.agePath(id), s.partPath(id)) == nil {
		s.syncSpool()
	}
}

// removeSpool deletes the transfer's spool files, if any.
func (s *Store) removeSpool(id string) error {
	for _, p := range []string{s.partPath(id), s.agePath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: transfer %s: %w", id, err)
		}
	}
	return s.syncSpool()
}

// syncSpool fsyncs the spool directory, making renames and removals durable.
func (s *Store) syncSpool() error {
	d, err := os.Open(s.spool)
	if err != nil {
		return fmt.Errorf("store: sync spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync spool: %w", err)
	}
	return nil
}

// recoverSpool makes the spool agree with the metadata after a crash:
// files of unknown, quarantined or deleted transfers go, a ready
// transfer keeps only its .age, and an uploading transfer whose .part was
// renamed to .age just before the crash gets its .part back (and resumes).
func (s *Store) recoverSpool(ctx context.Context) error {
	entries, err := os.ReadDir(s.spool)
	if err != nil {
		return fmt.Errorf("store: recover spool: %w", err)
	}
	changed := false
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		id := strings.TrimSuffix(e.Name(), ext)
		if !e.Type().IsRegular() || (ext != partExt && ext != ageExt) || !validID(id) {
			continue // not ours
		}
		did, err := s.recoverFile(ctx, id, ext, filepath.Join(s.spool, e.Name()))
		if err != nil {
			return fmt.Errorf("store: recover spool: %w", err)
		}
		changed = changed || did
	}
	if changed {
		return s.syncSpool()
	}
	return nil
}

// recoverFile puts one spool file right, holding the transfer's lock: on a
// spool that replicas share, another replica may be between the steps of an
// upload (publishing, creating a ready transfer), which the lock waits for.
func (s *Store) recoverFile(ctx context.Context, id, ext, path string) (changed bool, err error) {
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return false, err
	}
	defer unlock()
	state, err := s.state(ctx, id)
	if err != nil {
		return false, err
	}
	switch {
	case state == StateUploading && ext == ageExt:
		err = os.Rename(path, s.partPath(id))
	case state == StateUploading, state == StateReady && ext == ageExt:
		return false, nil
	default:
		err = os.Remove(path)
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // another replica put it right meanwhile
	}
	return err == nil, err
}

// state returns the transfer's state, or "" if there is no such transfer.
func (s *Store) state(ctx context.Context, id string) (State, error) {
	var st State
	err := s.db.QueryRowContext(ctx, `SELECT state FROM transfers WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: transfer %s: %w", id, err)
	}
	return st, nil
}

// Stats counts what the store holds, for metrics and tests.
type Stats struct {
	Transfers   int   // all transfers
	Uploading   int   // transfers in StateUploading
	Ready       int   // transfers in StateReady
	Quarantined int   // transfers in StateQuarantined
	Keys        int   // parties with registered keys
	SpoolFiles  int   // files in the spool directory (on S3: objects and pieces)
	SpoolBytes  int64 // bytes in the spool directory (on S3: of objects and pieces)
}

// Stats returns the current counts of transfers and spool bytes.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.read(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys`).Scan(&st.Keys); err != nil {
			return fmt.Errorf("store: stats: %w", err)
		}
		return countStates(ctx, tx, &st)
	})
	if err != nil {
		return Stats{}, err
	}
	if s.s3 != nil {
		return st, s.s3.count(ctx, &st)
	}
	entries, err := os.ReadDir(s.spool)
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			st.SpoolFiles++
			st.SpoolBytes += fi.Size()
		}
	}
	return st, nil
}

func countStates(ctx context.Context, tx *sql.Tx, st *Stats) error {
	rows, err := tx.QueryContext(ctx, `SELECT state, count(*) FROM transfers GROUP BY state`)
	if err != nil {
		return fmt.Errorf("store: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state State
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return fmt.Errorf("store: stats: %w", err)
		}
		st.Transfers += n
		switch state {
		case StateUploading:
			st.Uploading = n
		case StateReady:
			st.Ready = n
		case StateQuarantined:
			st.Quarantined = n
		}
	}
	return rows.Err()
}
