package audit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Group commit of private entries' bodies.
//
// A body must be durable before the leaf that commits to it is handed to
// tessera, so every private append waits for its body's write. Written one
// by one, each body costs a sync of its own (an fsync, or a database
// commit), and the syncs, not the log, bound how fast entries are appended.
// The batcher instead gives one goroutine every body waiting to be written:
// it writes them together and syncs once, and answers each append with the
// batch's result. While it syncs, the next batch gathers, as tessera's own
// sequencer gathers entries. A batch that fails fails every append in it,
// and none of them is appended (fail closed).

// maxBodyBatch bounds the bodies written with one sync (and, on a shared
// log, the rows of one INSERT: 3 placeholders each, far below MySQL's 65,535).
const maxBodyBatch = 256

// errBodiesClosed is the error of an append made while the log closes.
var errBodiesClosed = errors.New("audit: the log is closed")

// bodyReq is one body waiting to be written.
type bodyReq struct {
	c, salt, body []byte
	done          chan error // the batch's result, buffered
}

// bodyBatcher owns the goroutine that writes bodies in batches.
type bodyBatcher struct {
	reqs    chan *bodyReq
	stop    chan struct{} // closed by close
	stopped chan struct{} // closed when the goroutine has returned
	once    sync.Once
	// write makes a batch durable, or fails as a whole; ctx ends with the
	// log or after timeout.
	write   func(ctx context.Context, batch []*bodyReq) error
	ctx     context.Context
	timeout time.Duration
}

// newBodyBatcher starts a batcher that writes with write; its goroutine
// runs until close.
func newBodyBatcher(ctx context.Context, timeout time.Duration, write func(context.Context, []*bodyReq) error) *bodyBatcher {
	b := &bodyBatcher{reqs: make(chan *bodyReq, maxBodyBatch), stop: make(chan struct{}), stopped: make(chan struct{}),
		write: write, ctx: ctx, timeout: timeout}
	go b.run()
	return b
}

func (b *bodyBatcher) run() {
	defer close(b.stopped)
	for {
		var batch []*bodyReq
		select {
		case <-b.stop:
			return
		case r := <-b.reqs:
			batch = append(batch, r)
		}
	fill:
		for len(batch) < maxBodyBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
		err := b.write(ctx, batch)
		cancel()
		for _, r := range batch {
			r.done <- err
		}
	}
}

// put returns once the body is durable, or with the error of its batch. An
// error means the body may or may not have been written: its entry must
// not be appended (a body without a leaf is an orphan nobody is shown).
func (b *bodyBatcher) put(ctx context.Context, c, salt, body []byte) error {
	r := &bodyReq{c: c, salt: salt, body: body, done: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-b.stop:
		return errBodiesClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-b.stopped:
		select {
		case err := <-r.done:
			return err
		default:
			return errBodiesClosed // queued after the last batch
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the goroutine once the batch under way is written. It is
// idempotent.
func (b *bodyBatcher) close() {
	b.once.Do(func() { close(b.stop) })
	<-b.stopped
}
