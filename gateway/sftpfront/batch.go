package sftpfront

import (
	"bufio"
	"io"
	"net"
	"sync"
	"time"
)

// A download is a stream of small writes: x/crypto/ssh writes each SSH packet
// (at most 32 KiB of data for OpenSSH's channels) to the TCP connection in two
// or three calls, its 4 KiB bufio.Writer being flushed after every packet, and
// pkg/sftp writes each reply's 13-byte header as a packet of its own. Write
// system calls were most of the front's CPU on a get. batchConn gathers them:
// Write only copies, and one goroutine hands everything gathered so far to the
// socket in one call while the next packets gather behind it. Under load each
// call carries many packets; an idle connection still sends a lone packet at
// once.

const (
	// batchMax is how many bytes may wait in a batchWriter; Write blocks beyond.
	batchMax = 256 << 10
	// drainTimeout bounds how long Close waits for the pending bytes to leave
	// before it cuts the connection anyway.
	drainTimeout = 10 * time.Second
)

// batchWriter gathers writes to w and writes them from one goroutine in as few
// calls as the pace of w allows. The first error of w is returned by every
// later Write. Make one with newBatchWriter; drain stops it.
type batchWriter struct {
	w io.Writer

	mu      sync.Mutex
	more    sync.Cond // bytes are pending, or closing
	room    sync.Cond // the flusher took the pending bytes, or stopped
	buf     []byte    // pending
	spare   []byte    // the buffer being written, reused once written
	busy    bool      // the flusher is in w.Write
	closing bool
	err     error
	done    chan struct{} // closed when the flusher has stopped
}

func newBatchWriter(w io.Writer) *batchWriter {
	b := &batchWriter{w: w, done: make(chan struct{})}
	b.more.L, b.room.L = &b.mu, &b.mu
	go b.flush()
	return b
}

// Write queues a copy of p; it waits while batchMax bytes are pending.
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.buf) >= batchMax && b.err == nil && !b.closing {
		b.room.Wait()
	}
	switch {
	case b.err != nil:
		return 0, b.err
	case b.closing:
		return 0, net.ErrClosed
	}
	b.buf = append(b.buf, p...)
	if !b.busy {
		b.more.Signal()
	}
	return len(p), nil
}

// flush writes the pending bytes to w until closing leaves none, or w fails.
func (b *batchWriter) flush() {
	defer close(b.done)
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.room.Broadcast()
	for {
		for len(b.buf) == 0 && !b.closing {
			b.more.Wait()
		}
		if len(b.buf) == 0 {
			return
		}
		out := b.buf
		b.buf, b.busy = b.spare[:0], true
		b.room.Broadcast()
		b.mu.Unlock()
		_, err := b.w.Write(out)
		b.mu.Lock()
		b.spare, b.busy = out[:0], false
		if err != nil {
			b.err, b.buf = err, nil
			return
		}
	}
}

// drain refuses further writes, waits until the pending bytes are written or
// w failed, and returns w's error if any. It may be called more than once.
func (b *batchWriter) drain() error {
	b.mu.Lock()
	b.closing = true
	b.more.Signal()
	b.room.Broadcast()
	b.mu.Unlock()
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// drainClose drains b, then closes c; if the bytes do not leave within
// timeout (a peer that stopped reading) c is closed anyway.
func drainClose(b *batchWriter, c io.Closer, timeout time.Duration) error {
	t := time.AfterFunc(timeout, func() { c.Close() })
	b.drain()
	t.Stop()
	return c.Close()
}

// batchConn is a net.Conn whose writes are batched: the SSH transport's
// packets reach the socket in few, large writes. Its reads are buffered too:
// x/crypto/ssh reads each packet with its 4 KiB bufio.Reader, which reads a
// 32 KiB packet body from the socket directly, in two or three system calls
// per packet (its length, the rest of the buffer, the body); an upload then
// cost about 100,000 read calls per GiB. Through readBuffer bytes of buffer,
// the socket is read in as few calls as what has arrived allows.
type batchConn struct {
	net.Conn
	br   *bufio.Reader
	bw   *batchWriter
	once sync.Once
	err  error
}

// readBuffer is the size of a batchConn's read buffer.
const readBuffer = 256 << 10

func newBatchConn(c net.Conn) *batchConn {
	return &batchConn{Conn: c, br: bufio.NewReaderSize(c, readBuffer), bw: newBatchWriter(c)}
}

func (c *batchConn) Read(p []byte) (int, error) { return c.br.Read(p) }

func (c *batchConn) Write(p []byte) (int, error) { return c.bw.Write(p) }

// Close sends what is pending (see drainClose) and closes the connection.
func (c *batchConn) Close() error {
	c.once.Do(func() { c.err = drainClose(c.bw, c.Conn, drainTimeout) })
	return c.err
}
