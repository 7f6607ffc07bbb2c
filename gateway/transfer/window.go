package transfer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/lexgate/lexgate/gateway/store"
)

// A large delivery from byte 0 reads its stored ciphertext from the disk once.
// The check reads the file in pieces of pieceSize, past the page cache where it
// can (store.DirectReader: the spool is written with O_DIRECT, so a buffered
// read of it is a cold one, which on virtual disks was the largest CPU cost of
// a download), with fetchers reads in flight, hashes the pieces in order, and
// keeps the last windowPieces of them in a window. The recipient's reads are
// answered from the window, so the bytes served are the bytes hashed. The
// fetchers stay within lead bytes of the furthest byte a read has asked for, so
// that what a recipient reads in order, or nearly (pkg/sftp answers OpenSSH's
// 64 pipelined reads from 8 goroutines), is still in the window when asked for.
// A read ahead of the check waits for it; a read of a piece the window has
// already dropped, or that the check will not bring (it stopped), reads the
// file, directly too (readMissed). A read of the held-back tail lifts the pace: the check runs to its
// verdict at the speed of the disk. A delivery closed before its end stops the
// check without a verdict.

const (
	// pieceSize is the read size of the check.
	pieceSize = 512 << 10
	// windowPieces is how many pieces the window keeps (8 MiB): with the
	// check up to lead ahead, reads up to 6 MiB behind the furthest byte asked
	// for are answered from it. pkg/sftp's 8 workers answering OpenSSH's
	// pipelined 255 KiB reads lag up to 2 MiB behind, more when one is
	// descheduled: with 4 MiB (2 MiB behind) 1.9% of the reads of 3×256 MiB
	// gets missed the window and read the file again, with 6 MiB 0.65%, with
	// 8 MiB 0.13%.
	windowPieces = 16
	// fetchers is how many piece reads the check keeps in flight: direct
	// reads skip the kernel's read-ahead, so one at a time leaves the disk idle
	// between them.
	fetchers = 2
	// lead is how far the check may read beyond the furthest byte asked for.
	lead = 4 * pieceSize
)

// pieceBufs recycles the window's buffers, aligned for direct reads.
var pieceBufs = sync.Pool{New: func() any { b := store.AlignedBuffer(pieceSize); return &b }}

// window is the part of a delivery the check read last, shared by the check's
// fetchers (which fill it), its hasher, and the delivery's reads. Piece p (the
// bytes from p*pieceSize) lives in slot p%windowPieces.
type window struct {
	size int64 // bytes the window serves: the ciphertext's recorded size

	mu      sync.Mutex
	more    sync.Cond // fetchers may go on: want grew, a slot was hashed, or stopping
	ready   sync.Cond // a piece was filled, or the check stopped
	slots   [windowPieces]slot
	want    int64 // the furthest byte a read asked for
	toEnd   bool  // a read waits for the verdict: no pace
	claimed int64 // the next piece a fetcher reads
	end     int64 // pieces from this one on are past the end of the file
	stopped bool  // the check has ended: nothing more will come
}

// slot holds piece p: buf[:n], read when filled (err: the read's error).
type slot struct {
	p      int64 // -1: never used
	filled bool
	hashed bool
	n      int
	err    error
	buf    []byte
	pooled *[]byte // buf, to give back to pieceBufs
}

func newWindow(size int64) *window {
	w := &window{size: size, end: math.MaxInt64}
	w.more.L, w.ready.L = &w.mu, &w.mu
	for i := range w.slots {
		w.slots[i].p = -1
	}
	return w
}

// toVerdict lets the check run to its verdict without pace: a read of the
// held-back tail waits for it.
func (w *window) toVerdict() {
	w.mu.Lock()
	w.toEnd = true
	w.more.Broadcast()
	w.mu.Unlock()
}

// read copies the bytes at off into p from the window, waiting for the check
// to bring them. It returns false when they are not there (dropped already, or
// the check stopped first): the caller reads the file. n < len(p) only at the
// recorded end of the ciphertext.
func (w *window) read(p []byte, off int64) (int, bool) {
	end := min(off+int64(len(p)), w.size)
	if off < 0 || off >= end {
		return 0, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if end > w.want {
		w.want = end
		w.more.Broadcast()
	}
	for o := off; o < end; {
		pc := o / pieceSize
		s := &w.slots[pc%windowPieces]
		switch {
		case s.p == pc && s.filled:
			from := int(o - pc*pieceSize)
			if from >= s.n {
				return 0, false // the file is shorter than recorded
			}
			o += int64(copy(p[o-off:end-off], s.buf[from:s.n]))
		case s.p > pc || w.stopped || pc >= w.end:
			return 0, false
		default:
			w.ready.Wait()
		}
	}
	return int(end - off), true
}

// claim waits until a fetcher may read the next piece and returns it with its
// slot's buffer; false when there is nothing more to read.
func (w *window) claim(ctx context.Context) (int64, []byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		pc := w.claimed
		s := &w.slots[pc%windowPieces]
		switch {
		case w.stopped || ctx.Err() != nil || pc >= w.end:
			return 0, nil, false
		case (w.toEnd || pc*pieceSize < w.want+lead) && (s.p < 0 || s.hashed):
			w.claimed++
			s.p, s.filled, s.hashed, s.n, s.err = pc, false, false, 0, nil
			if s.buf == nil {
				s.pooled = pieceBufs.Get().(*[]byte)
				s.buf = *s.pooled
			}
			return pc, s.buf, true
		}
		w.more.Wait()
	}
}

// fill publishes what a fetcher read of piece pc.
func (w *window) fill(pc int64, n int, err error) {
	w.mu.Lock()
	s := &w.slots[pc%windowPieces]
	s.filled, s.n, s.err = true, n, err
	if err != nil && pc+1 < w.end {
		w.end = pc + 1 // the last piece; later claims read nothing
	}
	w.ready.Broadcast()
	w.mu.Unlock()
}

// next waits for piece pc to be filled and returns its bytes and the error of
// its read; ok is false if ctx ended first.
func (w *window) next(ctx context.Context, pc int64) (b []byte, ok bool, readErr error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &w.slots[pc%windowPieces]
	for !(s.p == pc && s.filled) {
		if ctx.Err() != nil {
			return nil, false, nil
		}
		w.ready.Wait()
	}
	return s.buf[:s.n], true, s.err
}

// hashed frees piece pc's slot for a later piece.
func (w *window) hashed(pc int64) {
	w.mu.Lock()
	w.slots[pc%windowPieces].hashed = true
	w.more.Broadcast()
	w.mu.Unlock()
}

// stop ends the check: waiting reads go to the file, fetchers return.
func (w *window) stop() {
	w.mu.Lock()
	w.stopped = true
	w.ready.Broadcast()
	w.more.Broadcast()
	w.mu.Unlock()
}

// wake lets waiting fetchers and the hasher see that their context ended.
func (w *window) wake() {
	w.mu.Lock()
	w.ready.Broadcast()
	w.more.Broadcast()
	w.mu.Unlock()
}

// release returns the buffers once the check has stopped and the delivery is
// closed; later reads go to the file.
func (w *window) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.slots {
		if w.slots[i].pooled != nil {
			pieceBufs.Put(w.slots[i].pooled)
		}
		w.slots[i] = slot{p: -1}
	}
}

// checkServed is verifyStored for a delivery served while it is checked: the
// window w reads and hashes the stored ciphertext f of t as reads come near.
func (s *Service) checkServed(ctx context.Context, caller string, t *store.Transfer, f store.Blob, w *window) error {
	n, sum, err := w.check(ctx, f)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("transfer: check of %s stopped: %w", t.ID, err)
	case err != nil:
		return fmt.Errorf("transfer: read stored ciphertext of %s: %w", t.ID, err)
	}
	return s.verdict(ctx, caller, t, n, sum)
}

// check reads f into the window with its fetchers and hashes the pieces in
// order; it returns how many bytes f held and their SHA-256. It ends early, with
// ctx's error, when ctx ends. Either way the window is stopped when it returns,
// its fetchers gone (see run).
func (w *window) check(ctx context.Context, f store.Blob) (int64, []byte, error) {
	h := sha256.New()
	n, err := w.run(ctx, f, h)
	if err != nil {
		return n, nil, err
	}
	return n, h.Sum(nil), nil
}

// pass reads f into the window for a delivery its recipient checks
// (CheckByRecipient): as check, without the hash and without a verdict. A
// read error ends the window (the recipient's reads then read the file and
// meet the error themselves); it is returned for the log.
func (w *window) pass(ctx context.Context, f store.Blob) error {
	_, err := w.run(ctx, f, nil)
	return err
}

// run reads f into the window with its fetchers and hands the pieces, in
// order, to h (if not nil) before their slots may be reused; it returns how
// many bytes f held. It ends early, with ctx's error, when ctx ends.
func (w *window) run(ctx context.Context, f store.Blob, h io.Writer) (int64, error) {
	r := store.NewBlobReader(f)
	var wg sync.WaitGroup
	defer func() {
		w.stop()
		wg.Wait()
		r.Close()
	}()
	defer context.AfterFunc(ctx, w.wake)()
	for range fetchers {
		wg.Go(func() {
			for {
				pc, buf, ok := w.claim(ctx)
				if !ok {
					return
				}
				n, err := readPiece(r, buf, pc*pieceSize)
				w.fill(pc, n, err)
			}
		})
	}
	var n int64
	for pc := int64(0); ; pc++ {
		b, ok, err := w.next(ctx, pc)
		if !ok {
			return n, ctx.Err()
		}
		if h != nil {
			h.Write(b)
		}
		n += int64(len(b))
		w.hashed(pc)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// readMissed reads f at off into p like os.File.ReadAt, for a read the window
// could not answer (dropped already, or the check stopped): directly, past the
// page cache, in aligned pieces copied out of a window buffer where the file
// system allows, as the check reads. A buffered read there would be a cold one
// (the spool is written with O_DIRECT), costing the page cache's insertion and
// read-ahead for bytes read once.
func readMissed(f store.Blob, p []byte, off int64) (int, error) {
	if off < 0 {
		return f.ReadAt(p, off) // its error
	}
	r := store.NewBlobReader(f)
	defer r.Close()
	pooled := pieceBufs.Get().(*[]byte)
	defer pieceBufs.Put(pooled)
	buf := *pooled
	n := 0
	for n < len(p) {
		o := off + int64(n)
		from := o &^ (store.DirectAlign - 1)
		skip := int(o - from)
		want := min(len(p)-n, len(buf)-skip)
		span := (skip + want + store.DirectAlign - 1) &^ (store.DirectAlign - 1)
		k, err := readPiece(r, buf[:span], from)
		got := min(max(k-skip, 0), want)
		n += copy(p[n:], buf[skip:skip+got])
		switch {
		case err == io.EOF && n == len(p):
			return n, nil
		case err != nil:
			return n, err
		}
	}
	return n, nil
}

// readPiece fills buf from r at off; io.EOF once the end of the file is in buf
// (or was already reached).
func readPiece(r *store.DirectReader, buf []byte, off int64) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.ReadAt(buf[n:], off+int64(n))
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
