package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/lexgate/lexgate/gateway/directio"
)

// The send pipeline: age encrypts into a fanout, which cuts the ciphertext into
// aligned blocks and hands each block, without copying it, to three sinks that
// run at once: the SHA-256 for the final manifest, the spool file a resume
// reads from, and the upload. A block returns to the pool when all three are
// done with it, so memory stays at pipelineBlocks × blockSize however large the
// bundle, and a slow sink holds the encryption back instead of buffering.

const (
	// blockSize is the unit the pipeline moves ciphertext in, aligned so the
	// spool can be written with O_DIRECT.
	blockSize = 1 << 20
	// pipelineBlocks bounds the blocks in flight.
	pipelineBlocks = 16
	// sinkDepth is how many blocks may wait at one sink.
	sinkDepth = 4
)

// block is one buffer of ciphertext on its way to the sinks.
type block struct {
	buf  []byte
	refs atomic.Int32 // sinks still holding the block
	pool *blockPool
}

// release hands the block back to its pool once every sink has released it.
func (b *block) release() {
	if b.refs.Add(-1) == 0 {
		b.buf = b.buf[:0]
		b.pool.free <- b
	}
}

// blockPool holds the free blocks.
type blockPool struct{ free chan *block }

func newBlockPool(n int) *blockPool {
	p := &blockPool{free: make(chan *block, n)}
	for range n {
		p.free <- &block{buf: directio.AlignedBuffer(blockSize)[:0], pool: p}
	}
	return p
}

// fanout is the io.Writer age encrypts into: it fills blocks and hands each full
// one to every sink. n counts the bytes written.
type fanout struct {
	ctx   context.Context
	pool  *blockPool
	cur   *block
	sinks []chan *block
	n     int64
}

func newFanout(ctx context.Context, sinks int) *fanout {
	f := &fanout{ctx: ctx, pool: newBlockPool(pipelineBlocks)}
	for range sinks {
		f.sinks = append(f.sinks, make(chan *block, sinkDepth))
	}
	return f
}

func (f *fanout) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if f.cur == nil {
			select {
			case f.cur = <-f.pool.free:
			case <-f.ctx.Done():
				return n - len(p), f.ctx.Err()
			}
		}
		k := copy(f.cur.buf[len(f.cur.buf):cap(f.cur.buf)], p)
		f.cur.buf = f.cur.buf[:len(f.cur.buf)+k]
		f.n += int64(k)
		p = p[k:]
		if len(f.cur.buf) == cap(f.cur.buf) {
			if err := f.emit(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// emit hands the current block to every sink.
func (f *fanout) emit() error {
	b := f.cur
	f.cur = nil
	b.refs.Store(int32(len(f.sinks)))
	for _, s := range f.sinks {
		select {
		case s <- b:
		case <-f.ctx.Done():
			return f.ctx.Err()
		}
	}
	return nil
}

// close hands on the last, partial block and closes the sinks. It must be
// called exactly once, whatever happened before, so that the sinks finish.
func (f *fanout) close() error {
	var err error
	if f.cur != nil && len(f.cur.buf) > 0 {
		err = f.emit()
	}
	for _, s := range f.sinks {
		close(s)
	}
	return err
}

// hashBlocks hashes the blocks of in, in order, and sends the hex SHA-256 when
// in is closed.
func hashBlocks(in <-chan *block) <-chan string {
	out := make(chan string, 1)
	go func() {
		h := sha256.New()
		for b := range in {
			h.Write(b.buf)
			b.release()
		}
		out <- hex.EncodeToString(h.Sum(nil))
	}()
	return out
}

// spoolBlocks writes the blocks of in to f from offset 0, directly to the disk
// where it can, and sends the first error (or nil) when in is closed and f is
// closed. After an error it keeps releasing blocks so the pipeline never stalls.
// There is no fsync: the spool is only a cache for resuming, and a resume checks
// it against the signed manifest first.
func spoolBlocks(f *os.File, in <-chan *block) <-chan error {
	out := make(chan error, 1)
	go func() {
		w := directio.NewWriter(f, 0)
		var err error
		for b := range in {
			if err == nil {
				_, err = w.Write(b.buf)
			}
			b.release()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		out <- err
	}()
	return out
}

// errDetached is what a blockReader returns once the upload gave up on it.
var errDetached = errors.New("the upload stopped following the encryption")

// blockReader is the upload's sink: an io.Reader over the blocks of in. An
// HTTP transport may still read a request body after the request failed, so
// Read and detach are serialised.
type blockReader struct {
	mu       sync.Mutex
	in       <-chan *block
	cur      *block
	pos      int
	detached bool
}

func (r *blockReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.detached {
		return 0, errDetached
	}
	if r.cur == nil {
		b, ok := <-r.in
		if !ok {
			return 0, io.EOF
		}
		r.cur, r.pos = b, 0
	}
	k := copy(p, r.cur.buf[r.pos:])
	r.pos += k
	if r.pos == len(r.cur.buf) {
		r.cur.release()
		r.cur = nil
	}
	return k, nil
}

// detach stops the reader for good and releases every block it has and will
// get, so the encryption carries on into the spool without it.
func (r *blockReader) detach() {
	go func() {
		r.mu.Lock()
		r.detached = true
		if r.cur != nil {
			r.cur.release()
			r.cur = nil
		}
		r.mu.Unlock()
		for b := range r.in {
			b.release()
		}
	}()
}
