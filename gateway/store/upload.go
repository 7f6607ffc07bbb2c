package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"time"

	"github.com/lexgate/lexgate/gateway/directio"
	"github.com/lexgate/lexgate/gateway/internal/crashpoint"
)

// copyBufSize is the size of the buffer each WriteAt streams through: large
// enough that disk writes and hashing run at full speed, small enough that
// memory stays flat however big the upload.
const copyBufSize = 1 << 20

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// upload is the upload state of a transfer, as WriteAt needs it.
type upload struct {
	id        string
	state     State
	received  int64
	size      int64
	wantHash  string
	hashState []byte
	// boundary is where an in-order append stops writing: the first byte a
	// parallel upload holds or is writing beyond the prefix, else size.
	boundary int64
	// keepTail: bytes past the prefix belong to a parallel upload, so the
	// .part file is never cut back to the prefix.
	keepTail bool
}

// WriteAt appends the ciphertext read from r to the transfer id, starting
// at offset, and returns the durable offset afterwards.
//
// offset must equal the durable offset ([Transfer.Offset]); otherwise
// WriteAt returns an [*OffsetError] (matching [ErrOffset]) with the offset
// to resume from. r is streamed to disk, never buffered whole. If r carries
// bytes beyond the declared CiphertextSize, nothing from this call is kept
// and the error is [ErrTooLarge]. If r fails part way, or ctx is cancelled,
// the bytes received so far are kept and WriteAt returns the new durable
// offset with the error, so the client can resume from there.
//
// When the offset reaches CiphertextSize the SHA-256 is checked: on a match
// the transfer becomes [StateReady] with Completed set to now; otherwise it
// becomes [StateQuarantined], its bytes are deleted and the error is
// [ErrHashMismatch]. A streamed transfer, created with an empty
// CiphertextSHA256, has no hash to check yet: it stays uploading at its full
// size until [Store.Seal]. Writing to a ready transfer at its end with an empty r
// is a no-op, so a client may safely retry its last request. If the
// spool lost bytes the metadata had recorded, the upload restarts: the
// error is an [*OffsetError] expecting 0.
//
// Concurrent WriteAt calls for one transfer run one at a time; a call that
// waited for another typically finds the offset moved and gets [ErrOffset].
// Bytes that ranges of a parallel upload ([Store.WriteRange]) hold or are
// writing are skipped, not written; once the append reaches them they join
// the offset returned.
func (s *Store) WriteAt(ctx context.Context, id string, offset int64, r io.Reader, now time.Time) (newOffset int64, err error) {
	if !validID(id) {
		return 0, fmt.Errorf("%w: transfer %q", ErrNotFound, id)
	}
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("store: write transfer %s: %w", id, err)
	}
	defer unlock()
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return 0, err
	}
	switch {
	case u.state == StateQuarantined:
		return u.received, fmt.Errorf("%w: transfer %s is quarantined", ErrHashMismatch, id)
	case offset != u.received:
		return u.received, &OffsetError{Expected: u.received, Got: offset}
	case u.state == StateReady:
		if hasMore(r) {
			return u.received, fmt.Errorf("%w: transfer %s is complete at %d bytes", ErrTooLarge, id, u.size)
		}
		return u.received, nil
	}
	if s.s3 != nil {
		return s.s3WriteAt(ctx, u, offset, r, now)
	}
	if err := s.loadBoundary(ctx, u); err != nil {
		return u.received, err
	}
	return s.append(ctx, u, r, now)
}

// loadBoundary sets u's boundary and keepTail from the ranges of a parallel
// upload, recorded and being written.
func (s *Store) loadBoundary(ctx context.Context, u *upload) error {
	ranges, err := s.loadRanges(ctx, u.id, u.received)
	if err != nil {
		return err
	}
	busy := append(ranges, s.claims.get(u.id)...)
	u.boundary, u.keepTail = u.size, len(busy) > 0
	for _, sp := range busy {
		u.boundary = min(u.boundary, max(sp.Start, u.received))
	}
	return nil
}

// append does the work of WriteAt for an uploading transfer whose durable
// offset the write starts at. The caller holds the transfer's lock.
func (s *Store) append(ctx context.Context, u *upload, r io.Reader, now time.Time) (int64, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.hashState); err != nil {
		return u.received, fmt.Errorf("store: transfer %s: restore hash state: %w", u.id, err)
	}
	f, err := s.openPartKeep(u.id, u.received, u.keepTail)
	if errors.Is(err, errShortPart) {
		return s.restart(ctx, u, err)
	}
	if err != nil {
		return u.received, err
	}
	defer f.Close()

	n, copyErr := copyLimited(ctx, directio.NewWriter(f, u.received), h, r, u.boundary-u.received)
	if errors.Is(copyErr, ErrTooLarge) && u.boundary < u.size {
		// The rest up to the size is held or being written by ranges: skip it.
		copyErr = skip(r, u.size-u.boundary-1) // hasMore took one byte
	}
	switch {
	case errors.Is(copyErr, ErrTooLarge):
		return u.received, discard(f, u, fmt.Errorf("%w: transfer %s declared %d bytes", ErrTooLarge, u.id, u.size))
	case errors.Is(copyErr, errSpoolWrite):
		// The hash has seen bytes the disk may not have: keep nothing.
		return u.received, discard(f, u, fmt.Errorf("store: transfer %s: %w", u.id, copyErr))
	}
	if n == 0 && (copyErr != nil || u.boundary > u.received) {
		return u.received, wrapCopyErr(u, copyErr)
	}
	// The bytes on disk are ours now: record them even if the client has
	// gone and cancelled ctx.
	ctx = context.WithoutCancel(ctx)
	newOff := u.received + n
	if err := f.Sync(); err != nil {
		return u.received, fmt.Errorf("store: transfer %s: sync spool: %w", u.id, err)
	}
	crashpoint.Hit("store.upload.synced")
	var ranges []Span
	if u.keepTail {
		if ranges, err = s.loadRanges(ctx, u.id, u.received); err != nil {
			return u.received, err
		}
	}
	p, err := s.advance(ctx, u, f, h, newOff, ranges, false, now)
	if err != nil {
		return p.Offset, err
	}
	return p.Offset, wrapCopyErr(u, copyErr)
}

// skip reads and drops up to limit bytes of r: bytes an append does not
// write. A byte beyond limit is ErrTooLarge.
func skip(r io.Reader, limit int64) error {
	if _, err := io.Copy(io.Discard, io.LimitReader(r, limit)); err != nil {
		return err
	}
	if hasMore(r) {
		return ErrTooLarge
	}
	return nil
}

// restart sends an upload whose spool bytes were lost (the .part file is
// shorter than the recorded offset) back to offset 0, so the client
// uploads again instead of being stuck. It returns an *OffsetError.
func (s *Store) restart(ctx context.Context, u *upload, cause error) (int64, error) {
	hs, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return u.received, fmt.Errorf("store: %w", err)
	}
	if err := os.Remove(s.partPath(u.id)); err != nil {
		return u.received, fmt.Errorf("%w; removing it: %v", cause, err)
	}
	if err := s.update(ctx, u, `SET received = 0, hash_state = ?`, hs); err != nil {
		return u.received, err
	}
	if err := s.write(ctx, func(tx *sql.Tx) error { return replaceRanges(ctx, tx, u.id, nil) }); err != nil {
		return u.received, err
	}
	return 0, &OffsetError{Expected: 0, Got: u.received}
}

// errSpoolWrite marks a failed write to the spool file, as opposed to a
// failed read from the client.
var errSpoolWrite = errors.New("write spool")

// discard cuts the .part file back to the durable offset after a write
// that must leave no trace, and returns err.
func discard(f *os.File, u *upload, err error) error {
	if u.keepTail {
		return err // past the prefix, the file holds ranges; unrecorded bytes are harmless
	}
	if terr := f.Truncate(u.received); terr != nil {
		return fmt.Errorf("%w (and truncating the spool file failed: %v)", err, terr)
	}
	return err
}

func wrapCopyErr(u *upload, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: transfer %s: upload interrupted: %w", u.id, err)
}

// copyLimited streams up to limit bytes from r into f and h, in large
// blocks, and returns how many bytes reached both. A byte beyond limit is
// ErrTooLarge; a failed write wraps errSpoolWrite (and then h may hold more
// than n bytes). It stops early, with the error, if r fails or ctx ends.
func copyLimited(ctx context.Context, f io.Writer, h hash.Hash, r io.Reader, limit int64) (n int64, err error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for n < limit {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		b := buf[:min(int64(len(buf)), limit-n)]
		nr, rerr := io.ReadFull(r, b)
		if nr > 0 {
			if err := writeAndHash(f, h, b[:nr]); err != nil {
				return n, err
			}
			n += int64(nr)
			crashpoint.Hit("store.upload.mid_chunk")
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
	if hasMore(r) {
		return n, ErrTooLarge
	}
	return n, nil
}

// writeAndHash writes b to f and to h in parallel: hashing costs about as
// much CPU as the write system call, so overlapping them speeds up uploads.
func writeAndHash(f io.Writer, h hash.Hash, b []byte) error {
	done := make(chan struct{})
	go func() {
		h.Write(b)
		close(done)
	}()
	_, err := f.Write(b)
	<-done
	if err != nil {
		return fmt.Errorf("%w: %w", errSpoolWrite, err)
	}
	return nil
}

// hasMore reports whether r yields at least one more byte.
func hasMore(r io.Reader) bool {
	var one [1]byte
	k, _ := io.ReadFull(r, one[:])
	return k > 0
}

func (s *Store) loadUpload(ctx context.Context, id string) (*upload, error) {
	u := &upload{id: id}
	err := s.db.QueryRowContext(ctx, `SELECT state, received, ciphertext_size, ciphertext_sha256, hash_state
		FROM transfers WHERE id = ?`, id).Scan(&u.state, &u.received, &u.size, &u.wantHash, &u.hashState)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: transfer %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: transfer %s: %w", id, err)
	}
	return u, nil
}

// finish checks the hash of a fully received upload and makes the transfer
// ready or quarantined. f is the synced .part file. seal, when not nil, is the
// final manifest of a streamed transfer, recorded with the ready state.
func (s *Store) finish(ctx context.Context, u *upload, f *os.File, h hash.Hash, now time.Time, seal *Seal) error {
	got := hex.EncodeToString(h.Sum(nil))
	if got != u.wantHash {
		// Quarantine first: a crash before the file is gone leaves a
		// quarantined transfer whose file Open removes.
		if err := s.update(ctx, u, `SET state = 'quarantined', received = ?, hash_state = NULL`, u.size); err != nil {
			return err
		}
		f.Close()
		if err := s.removeSpool(u.id); err != nil {
			return err
		}
		return fmt.Errorf("%w: transfer %s: got %s, want %s; transfer quarantined", ErrHashMismatch, u.id, got, u.wantHash)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: transfer %s: %w", u.id, err)
	}
	// Rename first: content is in place before the metadata says ready.
	// A crash in between leaves an uploading transfer with a .age file,
	// which Open renames back.
	crashpoint.Hit("store.finish.verified")
	if err := s.publish(u.id); err != nil {
		return err
	}
	crashpoint.Hit("store.finish.published")
	var err error
	if seal == nil {
		err = s.update(ctx, u, `SET state = 'ready', received = ?, hash_state = NULL, completed = ?`, u.size, now.UnixNano())
	} else {
		err = s.update(ctx, u, `SET state = 'ready', received = ?, hash_state = NULL, completed = ?,
			ciphertext_sha256 = ?, manifest_hash = ?, manifest = ?`, u.size, now.UnixNano(),
			seal.CiphertextSHA256, seal.ManifestHash, nonNilBytes(seal.Manifest))
	}
	if err != nil {
		s.unpublish(u.id)
		return err
	}
	return nil
}

// update changes the transfer's row, provided it is still the upload u
// describes.
func (s *Store) update(ctx context.Context, u *upload, set string, args ...any) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE transfers `+set+` WHERE id = ? AND state = 'uploading' AND received = ?`,
			append(args, u.id, u.received)...)
		if err != nil {
			return fmt.Errorf("store: transfer %s: record upload: %w", u.id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: transfer %s changed during upload", u.id)
		}
		return nil
	})
}

// Open opens the ciphertext of a ready transfer for reading, for example
// with [NewBlobStream]. It returns [ErrNotFound] for an unknown transfer and
// [ErrNotComplete] for one that is not ready. The caller closes the blob: a
// [*FileBlob] on the spool directory, the sealed object on S3.
func (s *Store) Open(ctx context.Context, id string) (Blob, error) {
	var state State
	err := s.db.QueryRowContext(ctx, `SELECT state FROM transfers WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: transfer %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: transfer %s: %w", id, err)
	}
	if state != StateReady {
		return nil, fmt.Errorf("%w: transfer %s is %s", ErrNotComplete, id, state)
	}
	if s.s3 != nil {
		return s.s3.open(ctx, id)
	}
	f, err := os.Open(s.agePath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: transfer %s ciphertext", ErrNotFound, id) // deleted meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("store: transfer %s: %w", id, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: transfer %s: %w", id, err)
	}
	return &FileBlob{f: f, size: fi.Size()}, nil
}
