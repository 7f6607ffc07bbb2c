package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkS3Upload uploads 256 MiB per iteration through WriteAt in 16 MiB
// chunks, on the spool and on S3 (versitygw), both with PostgreSQL metadata,
// as one upload and as 4 or 16 concurrent ones. Besides MB/s it
// reports ready-ms, the time from the last byte read from the body to the
// transfer being ready (the sender's wait at its last acknowledgement), and
// the process's peak heap and peak RSS during the run (versitygw and
// PostgreSQL are processes of their own, not counted).
func BenchmarkS3Upload(b *testing.B) {
	for _, backend := range []string{"spool", "s3"} {
		for _, n := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("%s/%dx%dMiB", backend, n, 256/n), func(b *testing.B) {
				benchConcurrentUploads(b, benchStore(b, backend), n, 256<<20/int64(n))
			})
		}
	}
}

// benchStore opens a store on PostgreSQL with the ciphertext on backend.
func benchStore(b *testing.B, backend string) *Store {
	dsn, err := postgresCluster(b).NewDatabase(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Dir: b.TempDir(), Driver: DriverPostgres, Postgres: PostgresConfig{DSN: dsn}, Replica: "r1"}
	if backend == "s3" {
		cfg.Ciphertext, cfg.S3 = CiphertextS3, s3Config(b, b.TempDir())
	}
	s, err := Open(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchConcurrentUploads(b *testing.B, s *Store, n int, size int64) {
	const chunk = 16 << 20
	data := randomBytes(b, chunk)
	sum := sha256.New()
	for range size / chunk {
		sum.Write(data)
	}
	h := hex.EncodeToString(sum.Sum(nil))
	ctx := context.Background()
	b.SetBytes(size * int64(n))
	var ready time.Duration
	runtime.GC()
	peak := watchMemory(b)
	for b.Loop() {
		ids := make([]string, n)
		b.StopTimer()
		for i := range ids {
			tr := newTransfer(b, alice, nil, bob)
			tr.CiphertextSize, tr.CiphertextSHA256 = size, h
			if err := s.CreateTransfer(ctx, tr); err != nil {
				b.Fatal(err)
			}
			ids[i] = tr.ID
		}
		b.StartTimer()
		var wg sync.WaitGroup
		lat := make([]time.Duration, n)
		for i, id := range ids {
			wg.Go(func() {
				for off := int64(0); off < size; off += chunk {
					r := &lastByteReader{r: bytes.NewReader(data)}
					if _, err := s.WriteAt(ctx, id, off, r, t0); err != nil {
						b.Error(err)
						return
					}
					lat[i] = time.Since(r.last)
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		for i, id := range ids {
			ready += lat[i]
			if got, err := s.Transfer(ctx, id); err != nil || got.State != StateReady {
				b.Fatalf("after the upload: %v, %v", got, err)
			}
			if err := s.DeleteTransfer(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	heap, rss := peak()
	b.ReportMetric(float64(ready.Milliseconds())/float64(b.N*n), "ready-ms")
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
}

// lastByteReader notes when its reader returned its last byte.
type lastByteReader struct {
	r    *bytes.Reader
	last time.Time
}

func (l *lastByteReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if n > 0 && l.r.Len() == 0 {
		l.last = time.Now()
	}
	return n, err
}

var _ io.Reader = (*lastByteReader)(nil)

// watchMemory samples the heap every 5 ms from now on and resets the
// process's peak RSS; the function it returns stops sampling and returns
// the peak heap in use and the peak RSS (0 where /proc is missing).
func watchMemory(b *testing.B) func() (heap, rss uint64) {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	var peakHeap atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if h := sample[0].Value.Uint64() + sample[1].Value.Uint64(); h > peakHeap.Load() {
				peakHeap.Store(h)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(stop)
		<-done
		return peakHeap.Load(), peakRSS()
	}
}

// peakRSS returns VmHWM of /proc/self/status in bytes, 0 if unknown.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
