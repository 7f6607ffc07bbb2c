package audit_test

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
)

// benchEvent is the size and shape of an upload completion: a private entry
// (a commitment, its body beside the log), or with public the same event as
// a public leaf, which is how every entry was logged before issue 16.
func benchEvent(i int, public bool) audit.Event {
	kind := audit.KindUploadComplete
	if public {
		kind = audit.KindKeyRegistration
	}
	return audit.Event{Kind: kind, Actor: "spiffe://harbor-law.example/paralegal/alice",
		Recipients: []string{"spiffe://manila-lpo.example/site/review-team"}, Transfer: "t-bench-" + string(rune('a'+i%26)),
		Matter: "HL-2025-001", Labels: []string{"privileged", "personal-data"},
		ManifestSHA256:   "9f2c1e3d4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff",
		CiphertextSHA256: "0011223344556677889900aabbccddeeff00112233445566778899aabbccddee", CiphertextSize: 1 << 30,
		Decision: &audit.Decision{ID: "4b0e8f6a-5d1c-4a7e-9a1b-2c3d4e5f6a7b", Allow: true}}
}

// BenchmarkAppend measures sustained appends with 64 concurrent writers (as many
// requests finishing at once): entries/s. Each append returns once its entry is
// sequenced and integrated on disk; a private entry's body is written and
// synced first, in one sync with the bodies of the appends made at the same
// time.
func BenchmarkAppend(b *testing.B) {
	for _, public := range []bool{false, true} {
		b.Run(entryKind(public), func(b *testing.B) { benchAppend(b, public) })
	}
}

func entryKind(public bool) string {
	if public {
		return "public"
	}
	return "private"
}

func benchAppend(b *testing.B, public bool) {
	l, err := audit.Open(b.Context(), audit.Config{Dir: filepath.Join(b.TempDir(), "audit")})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const writers = 64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += writers {
				if _, err := l.Append(b.Context(), benchEvent(i, public)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

// BenchmarkReceiptLatency measures what an upload completion adds before its
// receipt is ready: append the entry, wait for a signed checkpoint that covers it,
// build the inclusion proof. 8 uploads complete concurrently; p50 and p99 in ms,
// for checkpoint intervals of 100ms (the minimum), 200ms (the default) and 1s.
// The checkpoint interval dominates.
func BenchmarkReceiptLatency(b *testing.B) {
	for _, iv := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, time.Second} {
		for _, public := range []bool{false, true} {
			b.Run("checkpoint="+iv.String()+"/"+entryKind(public), func(b *testing.B) { benchReceipt(b, iv, public) })
		}
	}
}

func benchReceipt(b *testing.B, interval time.Duration, public bool) {
	l, err := audit.Open(b.Context(), audit.Config{Dir: filepath.Join(b.TempDir(), "audit"), CheckpointInterval: interval})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const uploads = 8
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += uploads {
				t0 := time.Now()
				idx, err := l.Append(b.Context(), benchEvent(i, public))
				if err == nil {
					_, err = l.Receipt(b.Context(), idx)
				}
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
