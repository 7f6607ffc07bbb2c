package sftpfront

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/lexgate/lexgate/gateway/transfer"
)

// maxPending bounds the bytes an ingest buffers from writes that arrived ahead
// of their turn. pkg/sftp runs writes on several workers, so packets the client
// sent in order can reach WriteAt slightly out of order; a client that writes
// far out of order (a sparse or parallel-chunk upload) is refused.
const maxPending = 16 << 20

// ingestWriter is the io.WriterAt the request server writes an upload into: it
// puts the packets back in order and streams them into the core's Ingest. Close
// (the client's successful close) commits; a transfer error (a dropped
// connection) or any earlier failure aborts, leaving nothing.
type ingestWriter struct {
	ctx     context.Context
	log     *slog.Logger
	ing     *transfer.Ingest
	onDone  func(error)
	mu      sync.Mutex
	next    int64
	pending map[int64][]byte
	pbytes  int
	err     error
	cut     bool
}

func (w *ingestWriter) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	switch {
	case off < w.next || w.pending[off] != nil:
		w.err = failure("write at offset %d overlaps data already written: uploads must be written once, in order", off)
		return 0, w.err
	case off > w.next:
		if w.pbytes+len(p) > maxPending {
			w.err = failure("write at offset %d is too far ahead of offset %d: uploads must be sequential", off, w.next)
			return 0, w.err
		}
		if w.pending == nil {
			w.pending = map[int64][]byte{}
		}
		w.pending[off] = append([]byte(nil), p...)
		w.pbytes += len(p)
		return len(p), nil
	}
	if err := w.write(p); err != nil {
		return 0, err
	}
	for len(w.pending) > 0 {
		b, ok := w.pending[w.next]
		if !ok {
			break
		}
		delete(w.pending, w.next)
		w.pbytes -= len(b)
		if err := w.write(b); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *ingestWriter) write(p []byte) error {
	if _, err := w.ing.Write(p); err != nil {
		w.err = status(err)
		return w.err
	}
	w.next += int64(len(p))
	return nil
}

// TransferError is called by pkg/sftp when the session ends with the file
// still open: the upload did not finish, so it must not be delivered.
func (w *ingestWriter) TransferError(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cut = true
	if w.err == nil {
		w.err = fmt.Errorf("connection lost: %w", err)
	}
}

// Close commits the upload if every write succeeded and arrived, and aborts it
// otherwise.
func (w *ingestWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.err
	if err == nil && len(w.pending) > 0 {
		err = failure("upload has a gap at offset %d: nothing was kept", w.next)
	}
	if err != nil {
		w.ing.Abort()
		w.log.WarnContext(w.ctx, "sftp upload discarded", "bytes", w.next, "err", err)
		w.onDone(err)
		return err
	}
	t, err := w.ing.Commit(w.ctx)
	if err != nil {
		w.log.ErrorContext(w.ctx, "sftp upload could not be stored", "err", err)
		w.onDone(err)
		return status(err)
	}
	w.log.InfoContext(w.ctx, "sftp upload delivered as a transfer", "transfer", t.ID, "bytes", w.next)
	w.onDone(nil)
	return nil
}
