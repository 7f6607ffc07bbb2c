package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/lexgate/lexgate/gateway/directio"
)

// asyncHash is a SHA-256 that hashes on its own goroutine what is written to it, so
// that hashing overlaps encryption and I/O instead of adding to them (SHA-256 costs
// about as much CPU as age's encryption). Writes copy into pooled buffers; at most
// asyncHashDepth of them wait, which bounds memory.
type asyncHash struct {
	h    hash.Hash
	ch   chan []byte
	done chan struct{}
	once sync.Once
	sum  []byte
}

const asyncHashDepth = 64

var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 128<<10); return &b }}

func newAsyncHash() *asyncHash {
	a := &asyncHash{h: sha256.New(), ch: make(chan []byte, asyncHashDepth), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for b := range a.ch {
			a.h.Write(b)
			b = b[:0]
			hashBufs.Put(&b)
		}
	}()
	return a
}

// Write queues a copy of p for hashing. It never fails.
func (a *asyncHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		bp := hashBufs.Get().(*[]byte)
		k := min(len(p), cap(*bp))
		b := append((*bp)[:0], p[:k]...)
		a.ch <- b
		p = p[k:]
	}
	return n, nil
}

// Sum waits for the queued writes and returns the digest. No Write may follow.
func (a *asyncHash) Sum() []byte {
	a.once.Do(func() {
		close(a.ch)
		<-a.done
		a.sum = a.h.Sum(nil)
	})
	return a.sum
}

// Hex is Sum in lowercase hex.
func (a *asyncHash) Hex() string { return hex.EncodeToString(a.Sum()) }

// asyncHashMin is the least size of a received file hashed on a goroutine of its
// own, beside the decryption that writes it; smaller files are hashed inline,
// where a goroutine would cost more than it overlaps.
const asyncHashMin = 4 << 20

// fileHash is the SHA-256 of one received file: inline or on its own goroutine.
type fileHash struct {
	inline hash.Hash
	async  *asyncHash
}

// newFileHash returns the hash for a file of about size bytes.
func newFileHash(size int64) *fileHash {
	if size >= asyncHashMin {
		return &fileHash{async: newAsyncHash()}
	}
	return &fileHash{inline: sha256.New()}
}

func (h *fileHash) Write(p []byte) (int, error) {
	if h.async != nil {
		return h.async.Write(p)
	}
	return h.inline.Write(p)
}

// hex waits for the hashing and returns the lowercase hex digest. No Write may follow.
func (h *fileHash) hex() string {
	if h.async != nil {
		return h.async.Hex()
	}
	return hex.EncodeToString(h.inline.Sum(nil))
}

// copyFull copies src to dst until EOF through buf, filling buf before each
// write: age hands out at most a 64 KiB chunk per read, and one write per
// buffer instead of per chunk spares system calls.
func copyFull(dst io.Writer, src io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return total, nil
		default:
			return total, err
		}
	}
}

// copyBufs holds aligned copyBufSize buffers for copies of received files.
var copyBufs = sync.Pool{New: func() any { b := directio.AlignedBuffer(copyBufSize); return &b }}

// writeReceived copies r, a received file of about size bytes, into f, and
// returns the bytes written and their hex SHA-256. A large file is hashed on a
// goroutine of its own and written directly to the disk (O_DIRECT where the
// file system has it): on this kind of virtual disk, buffered writes of large
// files cost several times the CPU, and slow every other write, once the
// cache ciphertext is written beside them. lex never fsyncs received files.
func writeReceived(f *os.File, r io.Reader, size int64) (int64, string, error) {
	h := newFileHash(size)
	var w io.Writer = f
	if size >= asyncHashMin {
		w = directio.NewWriter(f, 0)
	}
	buf := copyBufs.Get().(*[]byte)
	n, err := copyFull(io.MultiWriter(w, h), r, *buf)
	copyBufs.Put(buf)
	return n, h.hex(), err
}

// copyBufSize is the buffer of bulk copies: large reads and writes mean fewer
// system calls and fewer, larger age chunks per call.
const copyBufSize = 1 << 20

// fileSHA256 hashes a whole file, returning its size and hex digest.
func fileSHA256(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, copyBufSize))
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
