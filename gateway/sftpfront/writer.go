package sftpfront

import (
	"context"
	"crypto/sha256"
	"hash"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/lexgate/lexgate/gateway/transfer"
)

// maxPending bounds the bytes an ingest buffers from writes that arrived ahead
// of their turn. pkg/sftp runs writes on several workers, so packets the client
// sent in order can reach WriteAt slightly out of order; a client that writes
// far out of order (a sparse or parallel-chunk upload) is refused.
const maxPending = 16 << 20

// queueBytes bounds the in-order bytes waiting for the encrypting goroutine:
// enough to keep it busy while the request workers parse the next packets (64
// of OpenSSH's default 32 KiB writes, 8 of the 255 KiB writes it sends when
// limits@openssh.com offers them), small enough to bound memory per upload.
// It is counted in credits of creditBytes: a chunk takes one per started
// creditBytes, the encoder gives them back once it has written the chunk.
const (
	queueBytes  = 2 << 20
	creditBytes = 32 << 10
	queued      = queueBytes / creditBytes // chunks (and credits) at most in the queue
)

// creditsFor is the number of credits a chunk of n bytes takes (at least one,
// at most the whole queue).
func creditsFor(n int) int {
	return min(max(1, (n+creditBytes-1)/creditBytes), queued)
}

// ingestWriter is the io.WriterAt the request server writes an upload into. The
// request workers only copy each packet and put it back in order; one goroutine
// per upload (the encoder) encrypts, hashes and writes the ordered stream into
// the core's Ingest, so the workers go back to reading packets while it works.
// Close (the client's successful close) waits for the encoder and commits; a
// transfer error (a dropped connection) or any earlier failure aborts, leaving
// nothing.
type ingestWriter struct {
	ctx context.Context
	log *slog.Logger
	ing *transfer.Ingest
	max int64 // the upload's size limit, as the Ingest's
	key uploadKey
	reg *uploads
	m   *frontMetrics
	sum hash.Hash // SHA-256 of the plaintext, written by the encoder
	// received is next, for readers that must not take mu.
	received atomic.Int64

	mu      sync.Mutex
	next    int64 // offset of the next byte to queue
	pending map[int64][]byte
	pbytes  int
	err     error // the first failure: every later write and Close report it
	chunks  chan []byte
	credits chan struct{} // one token per credit a queued chunk holds
	encoded chan struct{} // closed when the encoder has stopped
	encErr  error         // the encoder's failure, read after encoded is closed
	failed  chan struct{} // closed by the encoder when it fails
	cut     bool          // the connection dropped with the file open
	closed  bool
	done    bool // committed, discarded or abandoned: nothing more to do
}

func newIngestWriter(ctx context.Context, log *slog.Logger, ing *transfer.Ingest, max int64, key uploadKey, reg *uploads, m *frontMetrics) *ingestWriter {
	w := &ingestWriter{ctx: ctx, log: log, ing: ing, max: max, key: key, reg: reg, m: m, sum: sha256.New(),
		chunks: make(chan []byte, queued), credits: make(chan struct{}, queued), encoded: make(chan struct{}), failed: make(chan struct{})}
	go w.encode()
	return w
}

// size is how many bytes of the upload arrived in order: where a resume
// writes on. It takes no lock: the upload registry asks while holding its own,
// which Close takes while holding w.mu.
func (w *ingestWriter) size() int64 { return w.received.Load() }

// encode writes the queued chunks, in order, into the Ingest until the queue is
// closed. After a failure it drains the queue without writing.
func (w *ingestWriter) encode() {
	defer close(w.encoded)
	for b := range w.chunks {
		if w.encErr == nil {
			w.sum.Write(b)
			if _, err := w.ing.Write(b); err != nil {
				w.encErr = status(err)
				close(w.failed)
			}
		}
		for range creditsFor(len(b)) {
			<-w.credits
		}
		putChunk(b)
	}
}

// WriteAt queues p (copied: pkg/sftp reuses its packet buffers) at off.
func (w *ingestWriter) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.failure(); err != nil {
		return 0, err
	}
	end := off + int64(len(p))
	switch {
	case end > w.max:
		return 0, w.fail(failure("%v: the upload exceeds the limit of %d bytes; nothing was kept", transfer.ErrTooLarge, w.max))
	case off < w.next || w.pending[off] != nil:
		return 0, w.fail(failure("write at offset %d overlaps data already written: uploads must be written once, in order", off))
	case off > w.next:
		if w.pbytes+len(p) > maxPending {
			return 0, w.fail(failure("write at offset %d is too far ahead of offset %d: uploads must be sequential", off, w.next))
		}
		if w.pending == nil {
			w.pending = map[int64][]byte{}
		}
		w.pending[off] = chunk(p)
		w.pbytes += len(p)
		return len(p), nil
	}
	if err := w.queue(chunk(p)); err != nil {
		return 0, err
	}
	for len(w.pending) > 0 {
		b, ok := w.pending[w.next]
		if !ok {
			break
		}
		delete(w.pending, w.next)
		w.pbytes -= len(b)
		if err := w.queue(b); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// chunkPool holds buffers for the large writes OpenSSH sends when
// limits@openssh.com offers them (up to limitWrite): the encoder gives each
// back once it has written it, so an upload does not allocate and zero a fresh
// 255 KiB buffer per write. Smaller writes are copied into buffers of their
// size, which the queue's byte budget then bounds.
var chunkPool = sync.Pool{New: func() any { return new([limitWrite]byte) }}

// pooled is the smallest write copied into a pooled buffer.
const pooled = 64 << 10

// chunk copies p into a buffer the encoder can keep.
func chunk(p []byte) []byte {
	if len(p) < pooled || len(p) > limitWrite {
		return append(make([]byte, 0, len(p)), p...)
	}
	return append(chunkPool.Get().(*[limitWrite]byte)[:0], p...)
}

// putChunk gives a pooled buffer back once the encoder has written it.
func putChunk(b []byte) {
	if cap(b) == limitWrite {
		chunkPool.Put((*[limitWrite]byte)(b[:limitWrite]))
	}
}

// queue hands b to the encoder, waiting while the queue holds queueBytes (that
// wait is what slows a client down to the encoder's pace). Every chunk in the
// queue holds a credit, so the chunk itself never waits for room.
func (w *ingestWriter) queue(b []byte) error {
	for range creditsFor(len(b)) {
		select {
		case w.credits <- struct{}{}:
		case <-w.failed:
			return w.failure()
		}
	}
	w.chunks <- b
	w.next += int64(len(b))
	w.received.Store(w.next)
	w.m.bytesIn.Add(float64(len(b)))
	return nil
}

// failure is the first error of the upload, the writer's or the encoder's.
func (w *ingestWriter) failure() error {
	if w.err != nil {
		return w.err
	}
	select {
	case <-w.failed:
		w.err = w.encErr // written before failed was closed
	default:
	}
	return w.err
}

func (w *ingestWriter) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// TransferError is called by pkg/sftp when the session ends with the file
// still open: the upload did not finish, so it is not delivered; Close then
// parks it for a resume.
func (w *ingestWriter) TransferError(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cut = true
	w.log.InfoContext(w.ctx, "sftp upload interrupted", "bytes", w.next, "err", err)
}

// resume makes a parked upload the file of a new open, in session ctx.
func (w *ingestWriter) resume(ctx context.Context, log *slog.Logger) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ctx, w.log = ctx, log
	w.cut, w.closed = false, false
	return w.next
}

// abandon discards a parked upload: no transfer, no staged file.
func (w *ingestWriter) abandon() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	close(w.chunks)
	<-w.encoded
	w.ing.Abort()
}

// Close, after a successful upload, waits for the encoder and commits it as a
// transfer, or recognises it as an identical re-upload of one delivered within
// the window and discards it. After a dropped connection it parks the upload
// for a resume; after any other failure it aborts it, leaving nothing. pkg/sftp
// calls it once per open; a second call only returns the first failure.
func (w *ingestWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.done {
		return w.err
	}
	w.closed = true
	if w.cut && w.failure() == nil {
		// Out-of-order writes past the gap are dropped: the client resumes
		// from the size it stats, which counts only bytes received in order.
		w.pending, w.pbytes = nil, 0
		if w.reg.park(w.key, w) {
			w.log.InfoContext(w.ctx, "sftp interrupted upload kept for a resume (reput) within sftp.upload_window", "bytes", w.next)
			return failure("connection lost")
		}
	}
	w.done = true
	close(w.chunks)
	<-w.encoded
	err := w.failure()
	if err == nil && len(w.pending) > 0 {
		err = failure("upload has a gap at offset %d: nothing was kept", w.next)
	}
	if err == nil && w.cut {
		err = failure("connection lost: nothing was kept")
	}
	if err != nil {
		w.ing.Abort()
		w.reg.ended(w.key, w)
		w.log.WarnContext(w.ctx, "sftp upload discarded", "bytes", w.next, "err", err)
		return err
	}
	var sum [32]byte
	w.sum.Sum(sum[:0])
	rec := w.reg.record(w.key, w, w.next, sum)
	id, dup, err := w.ing.CommitUpload(w.ctx, rec, aliases(w.key)...)
	w.reg.ended(w.key, w)
	if err != nil {
		w.log.ErrorContext(w.ctx, "sftp upload could not be stored", "err", err)
		return status(err)
	}
	w.reg.sweep(w.ctx, w.log)
	if dup {
		w.m.duplicates.Inc()
		w.log.InfoContext(w.ctx, "sftp identical re-upload within sftp.upload_window: not delivered again",
			"transfer", id, "bytes", w.next, "sha256", rec.SHA256)
		return nil
	}
	w.log.InfoContext(w.ctx, "sftp upload delivered as a transfer", "transfer", id, "bytes", w.next)
	return nil
}
