package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"github.com/lexgate/lexgate/gateway/store"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// storedFile writes n random bytes to a file in the test's directory (on the
// same file system as the test's spool, so direct reads are tried as in the
// gateway) and returns it opened, with its bytes.
func storedFile(t *testing.T, n int) (*os.File, []byte) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "x.age")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, b
}

// runCheck runs w.check on f in the background; the result arrives on the
// returned channel.
type checkResult struct {
	n   int64
	sum []byte
	err error
}

func runCheck(ctx context.Context, w *window, f *os.File) <-chan checkResult {
	c := make(chan checkResult, 1)
	go func() {
		b, err := store.NewFileBlob(f)
		if err != nil {
			c <- checkResult{err: err}
			return
		}
		n, sum, err := w.check(ctx, b)
		c <- checkResult{n, sum, err}
	}()
	return c
}

// TestWindowServesWhatItHashes: reads in the order pkg/sftp makes them for
// OpenSSH's sftp (32 KiB requests answered by 8 goroutines) are all answered
// from the window, with the file's bytes, and the check hashes the file once,
// whatever its size against the piece size.
func TestWindowServesWhatItHashes(t *testing.T) {
	for _, size := range []int{1, pieceSize, 3*pieceSize + 4097, 11<<20 + 123} {
		f, want := storedFile(t, size)
		w := newWindow(int64(size))
		done := runCheck(t.Context(), w, f)
		got := make([]byte, size)
		var next atomic.Int64
		var missed atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					off := next.Add(32<<10) - 32<<10
					if off >= int64(size) {
						return
					}
					p := got[off:min(off+32<<10, int64(size))]
					if n, ok := w.read(p, off); !ok || n != len(p) {
						missed.Add(1)
						f.ReadAt(p, off) // as Delivery does
					}
				}
			})
		}
		wg.Wait()
		r := <-done
		if r.err != nil || r.n != int64(size) {
			t.Fatalf("size %d: check = %d bytes, %v", size, r.n, r.err)
		}
		if sum := sha256.Sum256(want); !bytes.Equal(r.sum, sum[:]) {
			t.Errorf("size %d: the check's hash is not the file's", size)
		}
		// A reader goroutine descheduled for long on a busy machine may fall
		// behind the window (the caller then reads the file); 95% must be answered
		// from it.
		if m, reads := missed.Load(), int64(size+32<<10-1)/(32<<10); m > reads/20 {
			t.Errorf("size %d: %d of %d in-order reads were not answered from the window", size, m, reads)
		}
		t.Logf("size %d: %d reads missed the window", size, missed.Load())
		if !bytes.Equal(got, want) {
			t.Errorf("size %d: the window served other bytes than the file's", size)
		}
		w.release()
	}
}

// TestWindowPace: the check reads no further than lead beyond the furthest
// byte asked for; a read far ahead waits for the check to get there; a read
// behind the window is refused (the caller reads the file); toVerdict runs the
// check to its end; a read past the recorded size gets the bytes up to it.
func TestWindowPace(t *testing.T) {
	size := 16 << 20
	f, want := storedFile(t, size)
	w := newWindow(int64(size))
	done := runCheck(t.Context(), w, f)
	claimedBy := func() int64 {
		time.Sleep(100 * time.Millisecond) // let the fetchers go as far as allowed
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.claimed * pieceSize
	}
	if c := claimedBy(); c > lead+pieceSize {
		t.Fatalf("with no read the check claimed %d bytes, more than lead (%d)", c, lead)
	}
	p := make([]byte, 100)
	off := int64(9<<20 + 5)
	if n, ok := w.read(p, off); !ok || n != len(p) || !bytes.Equal(p, want[off:off+100]) {
		t.Fatalf("read ahead of the check: %d %v", n, ok)
	}
	if c := claimedBy(); c > off+100+lead+pieceSize {
		t.Fatalf("after a read up to %d the check claimed %d bytes", off+100, c)
	}
	if _, ok := w.read(p, 0); ok {
		t.Fatal("a read of a piece the window dropped was answered from it")
	}
	w.toVerdict()
	r := <-done
	if sum := sha256.Sum256(want); r.err != nil || r.n != int64(size) || !bytes.Equal(r.sum, sum[:]) {
		t.Fatalf("check after toVerdict: %d bytes, %v", r.n, r.err)
	}
	tail := make([]byte, 64<<10)
	if n, ok := w.read(tail, int64(size-1000)); !ok || n != 1000 || !bytes.Equal(tail[:n], want[size-1000:]) {
		t.Fatalf("read across the end: %d %v", n, ok)
	}
	w.release()
}

// TestWindowStop: ending the check's context (the delivery is closed) while it
// waits for reads ends it without a verdict, its fetchers gone; reads then go
// to the file.
func TestWindowStop(t *testing.T) {
	f, _ := storedFile(t, 8<<20)
	w := newWindow(8 << 20)
	ctx, cancel := context.WithCancel(t.Context())
	done := runCheck(ctx, w, f)
	p := make([]byte, 10)
	if _, ok := w.read(p, 1<<20); !ok {
		t.Fatal("a read near the start was not answered from the window")
	}
	time.Sleep(50 * time.Millisecond) // the check waits for reads to come nearer
	cancel()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("check after cancel: %v, want context.Canceled", r.err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the check did not stop when its context ended")
	}
	if _, ok := w.read(p, 7<<20); ok {
		t.Fatal("a read the stopped check never reached was answered from the window")
	}
	w.release()
}

// TestWindowShortFile: a stored file shorter than its recorded size is hashed
// as it is (the verdict then refuses it) and reads past its real end go to the
// file.
func TestWindowShortFile(t *testing.T) {
	f, want := storedFile(t, 3<<20)
	w := newWindow(4 << 20)
	done := runCheck(t.Context(), w, f)
	p := make([]byte, 32<<10)
	if _, ok := w.read(p, 3<<20+100); ok {
		t.Fatal("a read past the file's real end was answered from the window")
	}
	r := <-done
	if sum := sha256.Sum256(want); r.err != nil || r.n != 3<<20 || !bytes.Equal(r.sum, sum[:]) {
		t.Fatalf("check of a short file: %d bytes, %v", r.n, r.err)
	}
	w.release()
}

// TestReadMissed: a read the window could not answer, served directly in
// aligned pieces, returns what os.File.ReadAt returns (bytes, count, io.EOF
// at the end) for aligned and unaligned offsets, reads longer than a piece,
// and reads across, at and beyond the end of the file.
func TestReadMissed(t *testing.T) {
	size := 3*pieceSize + 5000
	f, _ := storedFile(t, size)
	fb, err := store.NewFileBlob(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		off  int64
		n    int
	}{
		{"aligned", 4096, 8192},
		{"OpenSSH's 255 KiB read", 7 * 261120, 261120},
		{"unaligned, within a block", 17, 100},
		{"longer than a piece", 1000, 2*pieceSize + 3},
		{"the whole file", 0, size},
		{"across the end", int64(size - 300), 4096},
		{"ending at the end", int64(size - 4096), 4096},
		{"at the end", int64(size), 10},
		{"beyond the end", int64(size + 9000), 10},
		{"negative offset", -1, 10},
	} {
		want, got := make([]byte, tc.n), make([]byte, tc.n)
		wn, werr := f.ReadAt(want, tc.off)
		gn, gerr := readMissed(fb, got, tc.off)
		if gn != wn || (gerr == nil) != (werr == nil) || !errors.Is(gerr, werr) && !(gerr != nil && tc.off < 0) {
			t.Errorf("%s: readMissed = %d, %v; os.File.ReadAt = %d, %v", tc.name, gn, gerr, wn, werr)
		}
		if !bytes.Equal(got[:gn], want[:wn]) {
			t.Errorf("%s: other bytes than the file's", tc.name)
		}
	}
}
