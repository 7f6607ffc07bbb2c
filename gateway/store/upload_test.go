package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// create stores a transfer declaring content and returns it.
func create(t testing.TB, s *Store, content []byte) *Transfer {
	t.Helper()
	tr := newTransfer(t, alice, content, bob)
	if err := s.CreateTransfer(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func testWriteAtChunks(t *testing.T, openStore func(testing.TB, string) *Store) {
	tests := []struct {
		name   string
		size   int
		chunks []int // chunk lengths, summing to size
	}{
		{"one chunk", 1000, []int{1000}},
		{"equal chunks", 3 << 20, []int{1 << 20, 1 << 20, 1 << 20}},
		{"odd chunks across buffer boundaries", copyBufSize*2 + 7, []int{1, copyBufSize + 3, 0, copyBufSize + 3}},
		{"empty ciphertext", 0, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			ctx := t.Context()
			content := randomBytes(t, tt.size)
			tr := create(t, s, content)
			var off int64
			for i, n := range tt.chunks {
				got, err := s.WriteAt(ctx, tr.ID, off, bytes.NewReader(content[off:off+int64(n)]), t0.Add(time.Hour))
				off += int64(n)
				if err != nil || got != off {
					t.Fatalf("chunk %d: WriteAt = %d, %v; want %d", i, got, err, off)
				}
				if i < len(tt.chunks)-1 {
					if _, err := s.Open(ctx, tr.ID); !errors.Is(err, ErrNotComplete) {
						t.Errorf("Open before complete = %v, want ErrNotComplete", err)
					}
				}
			}
			got, err := s.Transfer(ctx, tr.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != StateReady || got.Offset != int64(tt.size) || !got.Completed.Equal(t0.Add(time.Hour)) {
				t.Errorf("after upload: state %s, offset %d, completed %v", got.State, got.Offset, got.Completed)
			}
			assertContent(t, s, tr.ID, content)
			if n := fileSize(t, filepath.Join(dir, "spool", tr.ID+".part")); n != -1 {
				t.Errorf(".part still there with %d bytes", n)
			}
			// A retried final request is harmless; more bytes are not.
			if n, err := s.WriteAt(ctx, tr.ID, off, bytes.NewReader(nil), t0); err != nil || n != off {
				t.Errorf("empty write at end of ready transfer = %d, %v", n, err)
			}
			if _, err := s.WriteAt(ctx, tr.ID, off, bytes.NewReader([]byte("x")), t0); !errors.Is(err, ErrTooLarge) {
				t.Errorf("write past end of ready transfer = %v, want ErrTooLarge", err)
			}
			assertContent(t, s, tr.ID, content)
		})
	}
}

func testWriteAtHashMismatch(t *testing.T, openStore func(testing.TB, string) *Store) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	content := randomBytes(t, 4096)
	tr := create(t, s, content)
	if _, err := s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(content[:2048]), t0); err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(content[2048:])
	tampered[100] ^= 1
	n, err := s.WriteAt(ctx, tr.ID, 2048, bytes.NewReader(tampered), t0)
	if !errors.Is(err, ErrHashMismatch) || n != 4096 {
		t.Fatalf("WriteAt of tampered bytes = %d, %v; want 4096, ErrHashMismatch", n, err)
	}
	got, _ := s.Transfer(ctx, tr.ID)
	if got.State != StateQuarantined || got.Deliverable(bob) {
		t.Errorf("state = %s, want quarantined and undeliverable", got.State)
	}
	if _, err := s.Open(ctx, tr.ID); !errors.Is(err, ErrNotComplete) {
		t.Errorf("Open(quarantined) = %v, want ErrNotComplete", err)
	}
	for _, ext := range []string{".part", ".age"} {
		if n := fileSize(t, filepath.Join(dir, "spool", tr.ID+ext)); n != -1 {
			t.Errorf("%s left with %d bytes", ext, n)
		}
	}
	if _, err := s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(content), t0); !errors.Is(err, ErrHashMismatch) {
		t.Errorf("WriteAt after quarantine = %v, want ErrHashMismatch", err)
	}
}

func testWriteAtOffsetMismatch(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	content := randomBytes(t, 100)
	tr := create(t, s, content)
	if _, err := s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(content[:50]), t0); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 49, 51, 100, -1} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			n, err := s.WriteAt(ctx, tr.ID, off, bytes.NewReader(content[:10]), t0)
			var oe *OffsetError
			if !errors.As(err, &oe) || !errors.Is(err, ErrOffset) {
				t.Fatalf("WriteAt at %d = %v, want *OffsetError", off, err)
			}
			if oe.Expected != 50 || oe.Got != off || n != 50 {
				t.Errorf("OffsetError = %+v, n = %d; want expected 50", oe, n)
			}
		})
	}
	if _, err := s.WriteAt(ctx, "0000", 0, bytes.NewReader(nil), t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("WriteAt(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.WriteAt(ctx, "../x", 0, bytes.NewReader(nil), t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("WriteAt(bad id) = %v, want ErrNotFound", err)
	}
}

func testWriteAtTooLarge(t *testing.T, openStore func(testing.TB, string) *Store) {
	const size = copyBufSize + 100
	tests := []struct {
		name       string
		first      int // bytes written successfully first
		extra      int // bytes past the declared size in the next write
		wantOffset int64
	}{
		{"whole upload too large", 0, 1, 0},
		{"last chunk too large", 1000, 5000, 1000},
		{"much too large", 10, 3 * copyBufSize, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			ctx := t.Context()
			content := randomBytes(t, size)
			tr := create(t, s, content)
			if _, err := s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(content[:tt.first]), t0); err != nil {
				t.Fatal(err)
			}
			chunk := append(bytes.Clone(content[tt.first:]), randomBytes(t, tt.extra)...)
			n, err := s.WriteAt(ctx, tr.ID, int64(tt.first), bytes.NewReader(chunk), t0)
			if !errors.Is(err, ErrTooLarge) || n != tt.wantOffset {
				t.Fatalf("WriteAt = %d, %v; want %d, ErrTooLarge", n, err, tt.wantOffset)
			}
			if got := fileSize(t, filepath.Join(dir, "spool", tr.ID+".part")); got > tt.wantOffset {
				t.Errorf(".part has %d bytes, want at most %d", got, tt.wantOffset)
			}
			if got, _ := s.Transfer(ctx, tr.ID); got.State != StateUploading || got.Offset != tt.wantOffset {
				t.Errorf("after refusal: state %s offset %d", got.State, got.Offset)
			}
			if _, err := s.WriteAt(ctx, tr.ID, n, bytes.NewReader(content[n:]), t0); err != nil {
				t.Fatalf("correct retry: %v", err)
			}
			assertContent(t, s, tr.ID, content)
		})
	}
}

// brokenReader yields n bytes of r, then fails like a dropped connection.
type brokenReader struct {
	r io.Reader
	n int
}

var errBroken = errors.New("connection reset")

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, errBroken
	}
	p = p[:min(len(p), b.n, 4096)]
	n, err := b.r.Read(p)
	b.n -= n
	return n, err
}

func testWriteAtBrokenReader(t *testing.T, openStore func(testing.TB, string) *Store) {
	tests := []struct {
		name  string
		start int
		cut   int // bytes delivered before the failure
	}{
		{"fails at once", 0, 0},
		{"fails inside first buffer", 0, 1000},
		{"fails after a buffer", 0, copyBufSize + 5},
		{"fails on a resumed chunk", 777, 12345},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			ctx := t.Context()
			content := randomBytes(t, 3*copyBufSize)
			tr := create(t, s, content)
			if _, err := s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(content[:tt.start]), t0); err != nil {
				t.Fatal(err)
			}
			r := &brokenReader{r: bytes.NewReader(content[tt.start:]), n: tt.cut}
			n, err := s.WriteAt(ctx, tr.ID, int64(tt.start), r, t0)
			want := int64(tt.start + tt.cut)
			if !errors.Is(err, errBroken) || n != want {
				t.Fatalf("WriteAt = %d, %v; want %d, %v", n, err, want, errBroken)
			}
			if got, _ := s.Transfer(ctx, tr.ID); got.Offset != want {
				t.Errorf("recorded offset %d, want %d", got.Offset, want)
			}
			if got := heldBytes(t, s, dir, tr.ID); got != want && !(s.s3 != nil && want == 0 && got == 0) {
				t.Errorf("the store holds %d bytes of the upload, want %d", got, want)
			}
			if _, err := s.WriteAt(ctx, tr.ID, n, bytes.NewReader(content[n:]), t0); err != nil {
				t.Fatalf("resume: %v", err)
			}
			assertContent(t, s, tr.ID, content)
		})
	}
}

// cancelReader cancels a context after n bytes, as an HTTP server does
// when the client goes away.
type cancelReader struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	n, err := c.r.Read(p[:min(len(p), c.n)])
	c.n -= n
	return n, err
}

func testWriteAtCancelled(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	content := randomBytes(t, 100_000)
	tr := create(t, s, content)
	ctx, cancel := context.WithCancel(t.Context())
	n, err := s.WriteAt(ctx, tr.ID, 0, &cancelReader{r: bytes.NewReader(content), n: 60_000, cancel: cancel}, t0)
	if !errors.Is(err, context.Canceled) || n != 60_000 {
		t.Fatalf("WriteAt = %d, %v; want 60000, context.Canceled", n, err)
	}
	if got, _ := s.Transfer(t.Context(), tr.ID); got.Offset != 60_000 {
		t.Errorf("recorded offset %d, want 60000", got.Offset)
	}
	if _, err := s.WriteAt(t.Context(), tr.ID, n, bytes.NewReader(content[n:]), t0); err != nil {
		t.Fatal(err)
	}
	assertContent(t, s, tr.ID, content)
}

// TestCrashRecovery simulates crashes at each step of an upload by editing
// the spool (or the bucket) behind the store's back, then reopening it.
func testCrashRecovery(t *testing.T, openStore func(testing.TB, string) *Store) {
	const half = 50_000
	type crash = func(t *testing.T, s *Store, spool, id string)
	tests := []struct {
		name      string
		crash     crash
		crashS3   crash // the same crash on the S3 backend
		onlySpool bool
	}{
		{"junk past recorded offset", func(t *testing.T, _ *Store, spool, id string) {
			f, err := os.OpenFile(filepath.Join(spool, id+".part"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(bytes.Repeat([]byte("junk"), 10_000))
			f.Close()
		}, func(t *testing.T, s *Store, _, id string) { // a piece sent, its record lost
			putObject(t, s, "pieces/"+id+fmt.Sprintf("/%020d-%020d", half, half+40_000), bytes.Repeat([]byte("junk"), 10_000))
		}, false},
		{"renamed before commit", func(t *testing.T, _ *Store, spool, id string) {
			if err := os.Rename(filepath.Join(spool, id+".part"), filepath.Join(spool, id+".age")); err != nil {
				t.Fatal(err)
			}
		}, nil, true},
	}
	onS3 := openStore(t, t.TempDir()).s3 != nil
	for _, tt := range tests {
		if onS3 && tt.onlySpool {
			continue // a crash of the spool directory: not one of this backend
		}
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			spool := filepath.Join(dir, "spool")
			content := randomBytes(t, 2*half)
			s := openStore(t, dir)
			tr := create(t, s, content)
			if _, err := s.WriteAt(t.Context(), tr.ID, 0, bytes.NewReader(content[:half]), t0); err != nil {
				t.Fatal(err)
			}
			s.Close()
			orphan := filepath.Join(spool, "0123456789abcdef.age")
			if s.s3 != nil {
				tt.crashS3(t, s, spool, tr.ID)
				putObject(t, s, "objects/0123456789abcdef", []byte("left by a delete"))
			} else {
				tt.crash(t, s, spool, tr.ID)
				os.WriteFile(orphan, []byte("left by a delete"), 0o600)
			}

			s = openStore(t, dir)
			if n := fileSize(t, orphan); n != -1 {
				t.Errorf("orphan spool file kept")
			}
			if s.s3 != nil && objectExists(t, s, "objects/0123456789abcdef") {
				t.Errorf("orphan object kept")
			}
			got, err := s.Transfer(t.Context(), tr.ID)
			if err != nil || got.Offset != half {
				t.Fatalf("after crash: offset %v, %v; want %d", got, err, half)
			}
			if _, err := s.WriteAt(t.Context(), tr.ID, half, bytes.NewReader(content[half:]), t0); err != nil {
				t.Fatalf("resume after crash: %v", err)
			}
			assertContent(t, s, tr.ID, content)
		})
	}
}

func testConcurrentWriteAt(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	const writers, chunk = 8, 256 << 10
	content := randomBytes(t, 4*chunk)
	tr := create(t, s, content)
	// Every writer sends every chunk in order, racing the others; each chunk
	// must be accepted exactly once and the others told the offset moved.
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := make(map[int64]int)
	for range writers {
		wg.Go(func() {
			for off := int64(0); off < int64(len(content)); off += chunk {
				n, err := s.WriteAt(ctx, tr.ID, off, bytes.NewReader(content[off:off+chunk]), t0)
				switch {
				case err == nil:
					mu.Lock()
					accepted[off]++
					mu.Unlock()
				case errors.Is(err, ErrOffset):
					if n < off {
						t.Errorf("ErrOffset with durable offset %d behind %d", n, off)
					}
				default:
					t.Errorf("WriteAt at %d: %v", off, err)
				}
			}
		})
	}
	// Meanwhile other transfers upload independently.
	for range 4 {
		wg.Go(func() {
			other := randomBytes(t, chunk)
			o := create(t, s, other)
			if _, err := s.WriteAt(ctx, o.ID, 0, bytes.NewReader(other), t0); err != nil {
				t.Errorf("parallel transfer: %v", err)
			}
		})
	}
	wg.Wait()
	for off := int64(0); off < int64(len(content)); off += chunk {
		if accepted[off] != 1 {
			t.Errorf("chunk at %d accepted %d times, want once", off, accepted[off])
		}
	}
	assertContent(t, s, tr.ID, content)
}

// BenchmarkWriteAt uploads 256 MiB in 16 MiB chunks.
func BenchmarkWriteAt(b *testing.B) {
	benchUploads(b, func(ctx context.Context, s *Store, id string, data []byte, size, chunk int64) {
		for off := int64(0); off < size; off += chunk {
			if _, err := s.WriteAt(ctx, id, off, bytes.NewReader(data), t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchUploads times upload, which must complete a fresh 256 MiB transfer
// made of 16 copies of the 16 MiB data, once per iteration; the transfer is
// checked ready and deleted outside the timing.
func benchUploads(b *testing.B, upload func(ctx context.Context, s *Store, id string, data []byte, size, chunk int64)) {
	const size, chunk = 256 << 20, 16 << 20
	data := randomBytes(b, chunk)
	// The declared hash is of 16 copies of data; compute it once.
	h := hexSHA(bytes.Repeat(data, size/chunk))
	s := openStore(b, b.TempDir())
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		tr := newTransfer(b, alice, nil, bob)
		tr.CiphertextSize, tr.CiphertextSHA256 = size, h
		if err := s.CreateTransfer(ctx, tr); err != nil {
			b.Fatal(err)
		}
		upload(ctx, s, tr.ID, data, size, chunk)
		b.StopTimer()
		if got, err := s.Transfer(ctx, tr.ID); err != nil || got.State != StateReady {
			b.Fatalf("after the upload: %v, %v", got, err)
		}
		if err := s.DeleteTransfer(ctx, tr.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// failingWriter accepts n bytes, then fails like a full disk.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("no space left on device")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestCopyLimited(t *testing.T) {
	data := randomBytes(t, 3*copyBufSize)
	tests := []struct {
		name    string
		w       io.Writer
		limit   int64
		wantN   int64
		wantErr error
	}{
		{"all", io.Discard, int64(len(data)), int64(len(data)), nil},
		{"short input", io.Discard, int64(len(data)) + 1, int64(len(data)), nil},
		{"over limit", io.Discard, 10, 10, ErrTooLarge},
		{"disk full", &failingWriter{n: copyBufSize + 10}, int64(len(data)), copyBufSize, errSpoolWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := copyLimited(t.Context(), tt.w, sha256.New(), bytes.NewReader(data), tt.limit)
			if n != tt.wantN || !errors.Is(err, tt.wantErr) {
				t.Errorf("copyLimited = %d, %v; want %d, %v", n, err, tt.wantN, tt.wantErr)
			}
		})
	}
}

func testRecoverSpoolRemovesStale(t *testing.T, openStore func(testing.TB, string) *Store) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	s := openStore(t, dir)
	ctx := t.Context()
	content := randomBytes(t, 100)
	ready := create(t, s, content)
	s.WriteAt(ctx, ready.ID, 0, bytes.NewReader(content), t0)
	bad := create(t, s, content)
	s.WriteAt(ctx, bad.ID, 0, bytes.NewReader(randomBytes(t, 100)), t0)
	s.Close()

	stale := []string{
		ready.ID + ".part",          // crash after a retried rename
		bad.ID + ".part",            // crash between quarantine and removal
		"00000000000000000000.part", // crash between delete and removal
	}
	for _, name := range stale {
		os.WriteFile(filepath.Join(spool, name), []byte("stale"), 0o600)
	}
	os.WriteFile(filepath.Join(spool, "README"), []byte("not ours"), 0o600)

	s = openStore(t, dir)
	for _, name := range stale {
		if fileSize(t, filepath.Join(spool, name)) != -1 {
			t.Errorf("%s kept", name)
		}
	}
	if fileSize(t, filepath.Join(spool, "README")) == -1 {
		t.Errorf("a file the store does not own was removed")
	}
	assertContent(t, s, ready.ID, content)
}

func testWriteAtWaitHonoursContext(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	content := randomBytes(t, 10)
	tr := create(t, s, content)
	unlock, err := s.lockTransfers(t.Context(), tr.ID) // an upload in progress
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(content), t0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WriteAt while locked = %v, want context.DeadlineExceeded", err)
	}
	unlock()
	if _, err := s.WriteAt(t.Context(), tr.ID, 0, bytes.NewReader(content), t0); err != nil {
		t.Errorf("WriteAt after unlock = %v", err)
	}
	if s.pg == nil && len(s.locks.m) != 0 {
		t.Errorf("lock entries leaked: %d", len(s.locks.m))
	}
}

func testWriteAtLostSpoolBytesRestart(t *testing.T, openStore func(testing.TB, string) *Store) {
	for _, lose := range []string{"truncated", "removed"} {
		t.Run(lose, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			ctx := t.Context()
			content := randomBytes(t, 1000)
			tr := create(t, s, content)
			s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(content[:600]), t0)
			part := filepath.Join(dir, "spool", tr.ID+".part")
			switch {
			case s.s3 != nil: // the bucket lost the pieces
				losePieces(t, s, tr.ID)
			case lose == "truncated":
				os.Truncate(part, 100)
			default:
				os.Remove(part)
			}
			n, err := s.WriteAt(ctx, tr.ID, 600, bytes.NewReader(content[600:]), t0)
			var oe *OffsetError
			if !errors.As(err, &oe) || oe.Expected != 0 || n != 0 {
				t.Fatalf("WriteAt after losing bytes = %d, %v; want OffsetError expecting 0", n, err)
			}
			if _, err := s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(content), t0); err != nil {
				t.Fatalf("restarted upload: %v", err)
			}
			assertContent(t, s, tr.ID, content)
		})
	}
}
