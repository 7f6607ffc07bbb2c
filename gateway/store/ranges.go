package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/lexgate/lexgate/gateway/internal/crashpoint"
)

// WriteRange writes the ciphertext read from r into transfer id at
// [offset, end): one range of a parallel upload, which may arrive in any order
// and at the same time as other ranges of the same transfer. It returns the
// upload's durable progress afterwards.
//
// The bytes are written with pwrite outside the transfer's lock, which is held
// only to claim the span and to record it: the data is fsynced first, then the
// range is recorded in the metadata. When recorded ranges join the contiguous
// prefix, the prefix advances and its running SHA-256 reads the newly joined
// bytes back from the spool file. Bytes of the range that are durable already
// are skipped: a duplicated or overlapping range is harmless. Bytes another
// range write is writing now are written again: that write may be one the
// client gave up on (a request abandoned when lex moved to another path,
// still trickling in through a middlebox's buffers), and a retry must not
// depend on it, so when WriteRange returns without error every byte of the
// range is durable. Both writes carry the sender's same ciphertext; if they
// did not, the SHA-256 check at the end (and again at delivery) refuses it.
//
// end beyond the declared CiphertextSize is [ErrTooLarge], and so is a body
// longer than end − offset; nothing of that write is kept. The upload's first
// bytes (its age header) must be in before any other range: while the prefix
// is empty a range at offset > 0 is an [*OffsetError] expecting 0. If r fails
// part way, or ctx ends, the bytes received so far are kept and recorded, and
// the error is returned with the progress. When the prefix reaches
// CiphertextSize the transfer is finished as by [Store.WriteAt]. A range of a
// ready transfer is a no-op, so a client may retry its last request.
func (s *Store) WriteRange(ctx context.Context, id string, offset, end int64, r io.Reader, now time.Time) (Progress, error) {
	if !validID(id) {
		return Progress{}, fmt.Errorf("%w: transfer %q", ErrNotFound, id)
	}
	if offset < 0 || end <= offset {
		return Progress{}, invalidf("range %d-%d of transfer %s is empty", offset, end, id)
	}
	if s.s3 != nil {
		return s.s3WriteRange(ctx, id, offset, end, r, now)
	}
	rw, p, err := s.claimRange(ctx, id, offset, end)
	if rw == nil {
		return p, err
	}
	defer s.claims.remove(id, rw.holes)
	defer rw.f.Close()

	at, werr := rw.copy(ctx, r, offset, end)
	if errors.Is(werr, ErrTooLarge) || errors.Is(werr, errSpoolWrite) {
		// Whatever reached the holes is unrecorded, as if never written.
		return p, fmt.Errorf("store: transfer %s: range %d-%d: %w", id, offset, end, werr)
	}
	done := intersect(rw.holes, Span{offset, at})
	if len(done) == 0 && werr != nil {
		return p, fmt.Errorf("store: transfer %s: upload interrupted: %w", id, werr)
	}
	// The bytes on disk are ours now: record them even if the client has gone.
	ctx = context.WithoutCancel(ctx)
	crashpoint.Hit("store.range.written")
	if len(done) > 0 {
		if err := rw.f.Sync(); err != nil {
			return p, fmt.Errorf("store: transfer %s: sync spool: %w", id, err)
		}
	}
	crashpoint.Hit("store.range.synced")
	p, err = s.recordRange(ctx, id, rw.f, done, now)
	if err == nil && werr != nil {
		err = fmt.Errorf("store: transfer %s: upload interrupted: %w", id, werr)
	}
	return p, err
}

// rangeWrite is a range being written outside the transfer's lock.
type rangeWrite struct {
	f     *os.File
	holes []Span // the spans this write claimed: what it may write
}

// claimRange checks a range write against the transfer's state and claims
// the parts of [offset, end) that are neither durable nor being written. A nil
// rangeWrite means there is nothing to write: the progress and error say why.
func (s *Store) claimRange(ctx context.Context, id string, offset, end int64) (*rangeWrite, Progress, error) {
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return nil, Progress{}, fmt.Errorf("store: write transfer %s: %w", id, err)
	}
	defer unlock()
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return nil, Progress{}, err
	}
	p := Progress{Offset: u.received}
	switch {
	case u.state == StateQuarantined:
		return nil, p, fmt.Errorf("%w: transfer %s is quarantined", ErrHashMismatch, id)
	case end > u.size:
		return nil, p, fmt.Errorf("%w: transfer %s: range %d-%d ends past its %d bytes", ErrTooLarge, id, offset, end, u.size)
	case u.state == StateReady:
		return nil, p, nil
	case u.received == 0 && offset > 0:
		// The age header, at the start, is checked before any byte is kept.
		return nil, p, &OffsetError{Expected: 0, Got: offset}
	}
	if p.Ranges, err = s.loadRanges(ctx, id, u.received); err != nil {
		return nil, p, err
	}
	f, err := os.OpenFile(s.partPath(id), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, p, fmt.Errorf("store: transfer %s: %w", id, err)
	}
	if u.received == 0 { // the file may be new: make its name durable first
		if err := s.syncSpool(); err != nil {
			f.Close()
			return nil, p, err
		}
	}
	// Claims of writes in flight are not excluded (see WriteRange); they are
	// recorded so that an in-order append leaves those bytes to them.
	rw := &rangeWrite{f: f, holes: holes(Span{max(offset, u.received), end}, p.Ranges)}
	s.claims.add(id, rw.holes)
	return rw, p, nil
}

// copy reads the range [offset, end) from r and writes the bytes that fall in
// the claimed holes at their offsets. It returns how far it read: the bytes
// [offset, at) arrived. A byte beyond end is ErrTooLarge; a failed write
// wraps errSpoolWrite.
func (rw *rangeWrite) copy(ctx context.Context, r io.Reader, offset, end int64) (at int64, err error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	at = offset
	for at < end {
		if err := ctx.Err(); err != nil {
			return at, err
		}
		nr, rerr := io.ReadFull(r, buf[:min(int64(len(buf)), end-at)])
		for _, h := range intersect(rw.holes, Span{at, at + int64(nr)}) {
			if _, err := rw.f.WriteAt(buf[h.Start-at:h.End-at], h.Start); err != nil {
				return at, fmt.Errorf("%w: %w", errSpoolWrite, err)
			}
		}
		at += int64(nr)
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return at, fmt.Errorf("the range ended at byte %d of %d-%d: %w", at, offset, end, io.ErrUnexpectedEOF)
		case rerr != nil:
			return at, rerr
		}
	}
	if hasMore(r) {
		return at, fmt.Errorf("%w: the body is longer than the range %d-%d", ErrTooLarge, offset, end)
	}
	return at, nil
}

// recordRange records the durable spans done of transfer id, written and
// synced to f, and advances the prefix over every range that now joins it.
func (s *Store) recordRange(ctx context.Context, id string, f *os.File, done []Span, now time.Time) (Progress, error) {
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return Progress{}, fmt.Errorf("store: write transfer %s: %w", id, err)
	}
	defer unlock()
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return Progress{}, err
	}
	switch u.state {
	case StateReady:
		return Progress{Offset: u.received}, nil
	case StateQuarantined:
		return Progress{Offset: u.received}, fmt.Errorf("%w: transfer %s is quarantined", ErrHashMismatch, id)
	}
	have, err := s.loadRanges(ctx, id, u.received)
	if err != nil {
		return Progress{Offset: u.received}, err
	}
	return s.advance(ctx, u, f, nil, u.received, merge(have, done), len(done) > 0, now)
}

// advance commits an upload whose bytes [0, newOff) are durable and hashed
// into h (nil: the hash of [0, u.received) recorded in u), with ranges the
// durable ranges beyond u.received. Ranges that reach newOff join the prefix:
// their bytes are read back from f into the hash. A complete upload with a
// known hash is finished (ready or quarantined). changed says whether ranges
// differ from those recorded. The caller holds the transfer's lock.
func (s *Store) advance(ctx context.Context, u *upload, f *os.File, h hash.Hash, newOff int64, ranges []Span, changed bool, now time.Time) (Progress, error) {
	if h == nil {
		h = sha256.New()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.hashState); err != nil {
			return Progress{Offset: u.received}, fmt.Errorf("store: transfer %s: restore hash state: %w", u.id, err)
		}
	}
	prefix, rest := absorb(newOff, ranges)
	if prefix > newOff {
		if err := hashFile(h, f, newOff, prefix); errors.Is(err, io.ErrUnexpectedEOF) {
			_, err := s.restart(ctx, u, fmt.Errorf("%w: %w", errShortPart, err))
			return Progress{}, err
		} else if err != nil {
			return Progress{Offset: u.received}, fmt.Errorf("store: transfer %s: read back: %w", u.id, err)
		}
		changed = true
	}
	if prefix == u.size && u.wantHash != "" {
		// Range rows left below the prefix go with the transfer.
		err := s.finish(ctx, u, f, h, now, nil)
		if err != nil && !errors.Is(err, ErrHashMismatch) {
			return Progress{Offset: u.received}, err
		}
		return Progress{Offset: prefix, Done: true}, err
	}
	hs, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return Progress{Offset: u.received}, fmt.Errorf("store: transfer %s: save hash state: %w", u.id, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE transfers SET received = ?, hash_state = ? WHERE id = ? AND state = 'uploading' AND received = ?`,
			prefix, hs, u.id, u.received)
		if err != nil {
			return fmt.Errorf("store: transfer %s: record upload: %w", u.id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: transfer %s changed during upload", u.id)
		}
		if !changed {
			return nil
		}
		return replaceRanges(ctx, tx, u.id, rest)
	})
	if err != nil {
		return Progress{Offset: u.received}, err
	}
	u.received, u.hashState = prefix, hs
	return Progress{Offset: prefix, Ranges: rest}, nil
}

// hashFile writes bytes [from, to) of f into h. A file that ends before to is
// io.ErrUnexpectedEOF.
func hashFile(h hash.Hash, f *os.File, from, to int64) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	n, err := io.CopyBuffer(h, io.NewSectionReader(f, from, to-from), *bp)
	if err == nil && n < to-from {
		err = io.ErrUnexpectedEOF
	}
	return err
}
