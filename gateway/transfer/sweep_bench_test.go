package transfer_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
	"github.com/lexgate/lexgate/gateway/transfer"
	"github.com/lexgate/lexgate/policies"
)

// BenchmarkSweep measures one sweep of LEXGATE_SWEEP_N (default 100,000)
// expired transfers: each certified (a signed statement and an audit entry)
// and deleted. It reports the sweep's time per transfer and the peak heap
// in use during the sweep. The store and the log live in LEXGATE_BENCH_DIR
// when set (a tmpfs measures without the disk's fsyncs), else in a temporary
// directory. Run it with -benchtime=1x: each iteration fills a store first.
func BenchmarkSweep(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("LEXGATE_SWEEP_N")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		b.StopTimer()
		svc, st, done := sweepFixture(b, n)
		peak := watchHeap()
		b.StartTimer()
		start := time.Now()
		r, err := svc.Sweep(b.Context())
		took := time.Since(start)
		b.StopTimer()
		heap := peak()
		if err != nil || r.Destroyed != n {
			b.Fatalf("sweep: %+v, %v", r, err)
		}
		stats, _ := st.Stats(context.Background())
		if stats.Transfers != 0 {
			b.Fatalf("%d transfers left", stats.Transfers)
		}
		b.ReportMetric(float64(took.Microseconds())/float64(n), "µs/transfer")
		b.ReportMetric(took.Seconds(), "s/sweep")
		b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
		done()
		b.StartTimer()
	}
}

// sweepFixture is a core over a store holding n transfers that expired an hour ago.
func sweepFixture(b *testing.B, n int) (*transfer.Service, *store.Store, func()) {
	ctx := context.Background()
	root := os.Getenv("LEXGATE_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	dir, err := os.MkdirTemp(root, "sweep")
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{Dir: filepath.Join(dir, "data")})
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	lg, err := audit.Open(ctx, audit.Config{Dir: filepath.Join(dir, "audit"), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	pol, err := policy.Start(ctx, policy.Config{FS: policies.FS, Logger: quiet, SkipTests: true})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := transfer.New(transfer.Config{}, transfer.Deps{Store: st, Policy: pol, Bundles: x509bundle.NewSet(),
		Audit: lg, Log: quiet, GatewayID: "spiffe://harbor-law.example/gateway"})
	if err != nil {
		b.Fatal(err)
	}
	expired := time.Now().Add(-time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 { // the store queues writers; several keep it busy
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				var seed [8]byte
				binary.BigEndian.PutUint64(seed[:], uint64(i))
				h := sha256.Sum256(seed[:])
				t := &store.Transfer{Sender: "spiffe://harbor-law.example/paralegal/alice",
					Recipients: []string{"spiffe://manila-lpo.example/site/review-team"}, Matter: "HL-2026-0042",
					CiphertextSize: 1 << 20, CiphertextSHA256: hex.EncodeToString(h[:]), ManifestHash: hex.EncodeToString(h[:]),
					Obligations: store.Obligations{RetentionDays: 1, MaxDownloads: 5, ExpiresAt: expired}}
				if err := st.CreateTransfer(ctx, t); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return svc, st, func() { lg.Close(); st.Close(); pol.Close(); os.RemoveAll(dir) }
}

// watchHeap samples the heap in use until the returned func is called, which
// returns the largest sample.
func watchHeap() func() uint64 {
	runtime.GC()
	stop := make(chan struct{})
	out := make(chan uint64)
	go func() {
		var peak uint64
		var m runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(stop); return <-out }
}
