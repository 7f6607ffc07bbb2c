package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lexgate/lexgate/gateway/directio"
)

// Staging holds ciphertext that the gateway itself is producing (the SFTP front
// encrypts uploads on ingest) before it becomes a transfer. A staged file lives in
// spool/staging/ and becomes a ready transfer in one step with [Store.CreateReady];
// until then it belongs to no transfer and is never delivered. A crash leaves
// staged files behind: [Store.CleanStaging] removes them at start.

const stagingDir = "staging"

func (s *Store) stagingPath() string { return s.staging }

// Staged is a staging file. Its Write writes straight to the disk (O_DIRECT)
// what is block-aligned, as uploads are: writing gigabytes through the page cache
// and then fsyncing them all at the end was several times slower on virtual
// disks (see directio.Writer). Name, Sync and Close are the file's.
type Staged struct {
	*os.File
	w *directio.Writer
}

// Write appends p to the staging file.
func (f *Staged) Write(p []byte) (int, error) { return f.w.Write(p) }

// Stage creates an empty staging file (0600) for ciphertext the gateway writes
// itself. Remove it with [Store.Unstage] if it does not become a transfer.
func (s *Store) Stage() (*Staged, error) {
	dir := s.stagingPath()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: staging: %w", err)
	}
	f, err := os.CreateTemp(dir, "ingest-*.stage")
	if err != nil {
		return nil, fmt.Errorf("store: staging: %w", err)
	}
	return &Staged{File: f, w: directio.NewWriter(f, 0)}, nil
}

// Unstage removes a staging file made by Stage. A missing file is not an error.
func (s *Store) Unstage(path string) error {
	if err := s.checkStaged(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: unstage: %w", err)
	}
	return nil
}

// CleanStaging removes every staging file, left by uploads that a crash or a
// shutdown interrupted. It returns how many it removed. Call it only while no
// ingest is running (at start).
func (s *Store) CleanStaging() (int, error) {
	entries, err := os.ReadDir(s.stagingPath())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: clean staging: %w", err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".stage") {
			continue
		}
		if err := os.Remove(filepath.Join(s.stagingPath(), e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("store: clean staging: %w", err)
		}
		n++
	}
	return n, nil
}

func (s *Store) checkStaged(path string) error {
	if filepath.Dir(path) != s.stagingPath() || !strings.HasSuffix(path, ".stage") {
		return invalidf("staging file %q is not in %s", path, s.stagingPath())
	}
	return nil
}

// CreateReady stores a complete transfer whose ciphertext is the staged file at
// path (already fsynced by the caller), in one step: the file is moved into the
// spool as the transfer's ciphertext and the metadata is committed as
// [StateReady] with Offset = CiphertextSize and Completed = now. On error nothing
// is stored and the staged file is removed. A crash between the move and the
// commit leaves a spool file of no transfer, which Open removes.
func (s *Store) CreateReady(ctx context.Context, t *Transfer, path string, now time.Time) error {
	return s.createReady(ctx, t, path, now, nil)
}

// createReady is CreateReady with claim, when not nil, run in the
// transaction that inserts t: its error rolls the insert back.
func (s *Store) createReady(ctx context.Context, t *Transfer, path string, now time.Time, claim func(*sql.Tx) error) error {
	if err := s.checkStaged(path); err != nil {
		return err
	}
	if err := checkNew(t); err != nil {
		os.Remove(path)
		return err
	}
	if t.ID == "" {
		t.ID = newID()
	}
	if t.Created.IsZero() {
		t.Created = now
	}
	t.Created, now = t.Created.UTC(), now.UTC()
	// The lock keeps a replica repairing a shared spool from taking the
	// file for an orphan between the move and the commit.
	unlock, err := s.lockTransfers(ctx, t.ID)
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("store: transfer %s: %w", t.ID, err)
	}
	defer unlock()
	if s.s3 != nil {
		return s.s3CreateReady(ctx, t, path, now, claim)
	}
	if err := os.Rename(path, s.agePath(t.ID)); err != nil {
		os.Remove(path)
		return fmt.Errorf("store: transfer %s: %w", t.ID, err)
	}
	if err := s.syncSpool(); err != nil {
		s.removeSpool(t.ID)
		return err
	}
	if err := s.insertReady(ctx, t, now, claim); err != nil {
		s.removeSpool(t.ID)
		return err
	}
	readied(t, now)
	return nil
}

// s3CreateReady is CreateReady's work on the S3 backend: the staged file
// goes to the bucket as the transfer's object, then the metadata is
// committed; the staged file is removed either way. A crash in between
// leaves an object of no transfer, which Open removes. The caller holds the
// transfer's lock.
func (s *Store) s3CreateReady(ctx context.Context, t *Transfer, path string, now time.Time, claim func(*sql.Tx) error) error {
	defer os.Remove(path)
	if err := s.s3PutStaged(ctx, t.ID, path); err != nil {
		s.removeCiphertext(ctx, t.ID)
		return err
	}
	if err := s.insertReady(ctx, t, now, claim); err != nil {
		s.removeCiphertext(ctx, t.ID)
		return err
	}
	readied(t, now)
	return nil
}

// readied sets t's fields as CreateReady committed them.
func readied(t *Transfer, now time.Time) {
	t.State, t.Offset, t.Completed, t.Acked = StateReady, t.CiphertextSize, now, map[string]time.Time{}
	t.Downloads = map[string]int{}
	t.CiphertextSHA256, t.ManifestHash = strings.ToLower(t.CiphertextSHA256), strings.ToLower(t.ManifestHash)
}

func (s *Store) insertReady(ctx context.Context, t *Transfer, now time.Time, claim func(*sql.Tx) error) error {
	hs, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	labels, _ := json.Marshal(nonNil(t.Labels))
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO transfers (id, sender, matter, labels, file_count,
			plaintext_size, ciphertext_size, ciphertext_sha256, manifest_hash, manifest, decision_id,
			state, received, hash_state, created, completed, retention_days, max_downloads, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Sender, t.Matter, string(labels), t.FileCount, t.PlaintextSize, t.CiphertextSize,
			strings.ToLower(t.CiphertextSHA256), strings.ToLower(t.ManifestHash), nonNilBytes(t.Manifest),
			t.DecisionID, StateReady, t.CiphertextSize, hs, t.Created.UnixNano(), now.UnixNano(),
			t.Obligations.RetentionDays, t.Obligations.MaxDownloads, nanosOrZero(t.Obligations.ExpiresAt))
		if isConstraint(err) {
			return fmt.Errorf("%w: transfer %s or manifest %s from %s", ErrExists, t.ID, t.ManifestHash, t.Sender)
		}
		if err != nil {
			return fmt.Errorf("store: create transfer: %w", err)
		}
		for i, r := range t.Recipients {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recipients (transfer_id, pos, recipient) VALUES (?, ?, ?)`,
				t.ID, i, r); err != nil {
				return fmt.Errorf("store: create transfer: recipient %s: %w", r, err)
			}
		}
		if claim != nil {
			return claim(tx)
		}
		return nil
	})
}
