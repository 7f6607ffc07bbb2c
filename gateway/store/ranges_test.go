package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestSpanArithmetic(t *testing.T) {
	if got, want := holes(Span{0, 100}, []Span{{10, 20}, {50, 60}}, []Span{{15, 30}, {90, 200}}), []Span{{0, 10}, {30, 50}, {60, 90}}; !reflect.DeepEqual(got, want) {
		t.Errorf("holes = %v, want %v", got, want)
	}
	if got := holes(Span{10, 20}, []Span{{0, 100}}); got != nil {
		t.Errorf("holes of a covered span = %v, want none", got)
	}
	if got, want := merge([]Span{{30, 40}, {0, 10}}, []Span{{10, 20}, {35, 50}}), []Span{{0, 20}, {30, 50}}; !reflect.DeepEqual(got, want) {
		t.Errorf("merge = %v, want %v", got, want)
	}
	if p, rest := absorb(10, []Span{{5, 12}, {12, 20}, {30, 40}}); p != 20 || !reflect.DeepEqual(rest, []Span{{30, 40}}) {
		t.Errorf("absorb = %d, %v; want 20, [{30 40}]", p, rest)
	}
}

// writeRange writes content[off:end] as a range and fails the test on error.
func writeRange(t *testing.T, s *Store, id string, content []byte, off, end int64) Progress {
	t.Helper()
	p, err := s.WriteRange(t.Context(), id, off, end, bytes.NewReader(content[off:end]), t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("WriteRange %d-%d: %v", off, end, err)
	}
	return p
}

func testWriteRangeOutOfOrder(t *testing.T, openStore func(testing.TB, string) *Store) {
	for _, streamed := range []bool{false, true} {
		s := openStore(t, t.TempDir())
		const mib = 1 << 20
		content := randomBytes(t, 10*mib+123)
		tr := create(t, s, content)
		if streamed {
			if _, err := s.db.Exec(`UPDATE transfers SET ciphertext_sha256 = '' WHERE id = ?`, tr.ID); err != nil {
				t.Fatal(err)
			}
		}
		size := int64(len(content))
		// Nothing but the head until the head is in.
		if _, err := s.WriteRange(t.Context(), tr.ID, mib, 2*mib, bytes.NewReader(content[mib:2*mib]), t0); !errors.Is(err, ErrOffset) {
			t.Fatalf("a range before the head: %v, want ErrOffset", err)
		}
		if p := writeRange(t, s, tr.ID, content, 0, mib); p.Offset != mib || p.Ranges != nil {
			t.Fatalf("after the head: %+v", p)
		}
		if p := writeRange(t, s, tr.ID, content, 7*mib, size); p.Offset != mib || !reflect.DeepEqual(p.Ranges, []Span{{7 * mib, size}}) {
			t.Fatalf("after the tail: %+v", p)
		}
		// A duplicate, overlapping both what is held and what is not.
		if p := writeRange(t, s, tr.ID, content, 5*mib, 8*mib); !reflect.DeepEqual(p.Ranges, []Span{{5 * mib, size}}) {
			t.Fatalf("after an overlapping range: %+v", p)
		}
		// The middle arrives concurrently.
		var wg sync.WaitGroup
		for _, sp := range []Span{{3 * mib, 5 * mib}, {mib, 3 * mib}, {2 * mib, 4 * mib}} {
			wg.Go(func() {
				if _, err := s.WriteRange(context.Background(), tr.ID, sp.Start, sp.End, bytes.NewReader(content[sp.Start:sp.End]), t0.Add(time.Hour)); err != nil {
					t.Errorf("WriteRange %v: %v", sp, err)
				}
			})
		}
		wg.Wait()
		p, err := s.UploadProgress(t.Context(), tr.ID)
		if err != nil || p.Offset != size || p.Ranges != nil {
			t.Fatalf("UploadProgress = %+v, %v; want the whole %d bytes", p, err, size)
		}
		if streamed {
			if err := s.Seal(t.Context(), tr.ID, Seal{CiphertextSHA256: tr.CiphertextSHA256, ManifestHash: tr.ManifestHash, Manifest: []byte("{}")}, t0); err != nil {
				t.Fatalf("Seal: %v", err)
			}
		}
		assertContent(t, s, tr.ID, content)
		// A retried range of a ready transfer changes nothing.
		if p := writeRange(t, s, tr.ID, content, 0, mib); p.Offset != size {
			t.Errorf("a range after completion: %+v", p)
		}
	}
}

func testWriteRangeRefusals(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	content := randomBytes(t, 4<<20)
	tr := create(t, s, content)
	size := int64(len(content))
	writeRange(t, s, tr.ID, content, 0, 1<<20)
	if _, err := s.WriteRange(t.Context(), tr.ID, 2<<20, size+1, bytes.NewReader(make([]byte, size+1-2<<20)), t0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a range past the size: %v, want ErrTooLarge", err)
	}
	long := io.MultiReader(bytes.NewReader(content[2<<20:3<<20]), bytes.NewReader([]byte{1}))
	if _, err := s.WriteRange(t.Context(), tr.ID, 2<<20, 3<<20, long, t0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a body longer than its range: %v, want ErrTooLarge", err)
	}
	if p, _ := s.UploadProgress(t.Context(), tr.ID); p.Offset != 1<<20 || p.Ranges != nil {
		t.Errorf("refused ranges were kept: %+v", p)
	}
	// A cut body keeps what arrived.
	cut := io.MultiReader(bytes.NewReader(content[2<<20:2<<20+5000]), iotestErrReader{})
	p, err := s.WriteRange(t.Context(), tr.ID, 2<<20, 3<<20, cut, t0)
	if err == nil || !reflect.DeepEqual(p.Ranges, []Span{{2 << 20, 2<<20 + 5000}}) {
		t.Errorf("a cut range: %+v, %v; want its first 5000 bytes kept and an error", p, err)
	}
	// Wrong bytes in a range: the hash check at the end quarantines.
	bad := bytes.Clone(content)
	bad[3<<20] ^= 1
	writeRange(t, s, tr.ID, bad, 3<<20, size)
	_, err = s.WriteRange(t.Context(), tr.ID, 1<<20, 3<<20, bytes.NewReader(content[1<<20:3<<20]), t0)
	if !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("completing with a bad range: %v, want ErrHashMismatch", err)
	}
	if got, _ := s.Transfer(t.Context(), tr.ID); got.State != StateQuarantined {
		t.Errorf("state %s, want quarantined", got.State)
	}
}

// An in-order append skips what ranges hold and joins them.
func testWriteAtJoinsRanges(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	content := randomBytes(t, 5<<20)
	tr := create(t, s, content)
	writeRange(t, s, tr.ID, content, 0, 1<<20)
	writeRange(t, s, tr.ID, content, 3<<20, 4<<20)
	off, err := s.WriteAt(t.Context(), tr.ID, 1<<20, bytes.NewReader(content[1<<20:]), t0)
	if err != nil || off != 4<<20 {
		t.Fatalf("WriteAt across a range = %d, %v; want %d", off, err, 4<<20)
	}
	if off, err = s.WriteAt(t.Context(), tr.ID, off, bytes.NewReader(content[off:]), t0); err != nil || off != int64(len(content)) {
		t.Fatalf("WriteAt of the rest = %d, %v", off, err)
	}
	assertContent(t, s, tr.ID, content)
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// BenchmarkWriteRange uploads 256 MiB as 16 MiB ranges, four at a time, the
// head first and the rest in reverse order, so that every range but the last
// waits beyond the prefix and is read back when the prefix reaches it: the
// cost of a parallel upload beside BenchmarkWriteAt's in-order one.
func BenchmarkWriteRange(b *testing.B) {
	benchUploads(b, func(ctx context.Context, s *Store, id string, data []byte, size, chunk int64) {
		if _, err := s.WriteRange(ctx, id, 0, chunk, bytes.NewReader(data), t0); err != nil {
			b.Fatal(err)
		}
		offs := make(chan int64, size/chunk)
		for off := size - chunk; off > 0; off -= chunk {
			offs <- off
		}
		close(offs)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for off := range offs {
					if _, err := s.WriteRange(ctx, id, off, off+chunk, bytes.NewReader(data), t0); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
	})
}

// TestCancelWithRanges: cancelling a parallel upload removes its recorded
// ranges and bytes; a range still being written then finds no transfer.
func testCancelWithRanges(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	content := randomBytes(t, 4<<20)
	tr := create(t, s, content)
	writeRange(t, s, tr.ID, content, 0, 1<<20)
	writeRange(t, s, tr.ID, content, 2<<20, 3<<20)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.WriteRange(context.Background(), tr.ID, 3<<20, 4<<20, pr, t0)
		done <- err
	}()
	pw.Write(content[3<<20 : 3<<20+1000]) // the range is claimed and writing
	if err := s.CancelUpload(t.Context(), tr.ID); err != nil {
		t.Fatalf("CancelUpload: %v", err)
	}
	pw.Write(content[3<<20+1000 : 4<<20])
	pw.Close()
	if err := <-done; !errors.Is(err, ErrNotFound) {
		t.Errorf("a range written across the cancel: %v, want ErrNotFound", err)
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM upload_ranges`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d range rows left after the cancel (%v)", n, err)
	}
}
