package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"sync"
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
