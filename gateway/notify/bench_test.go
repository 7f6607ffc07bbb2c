package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/notify"
	"github.com/lexgate/lexgate/gateway/store"
)

// BenchmarkOutboxWebhook: events queued in the store and delivered to a
// local HTTPS webhook (signature checked): throughput in events/s and the
// delay from EnqueueEvent to the receiver, p50 and p99 — in a burst (all
// queued at once: throughput, and latency behind a backlog) and one at a
// time (latency alone).
func BenchmarkOutboxWebhook(b *testing.B) {
	b.Run("burst", func(b *testing.B) { benchOutbox(b, false) })
	b.Run("one-at-a-time", func(b *testing.B) { benchOutbox(b, true) })
}

func benchOutbox(b *testing.B, paced bool) {
	rcv := newReceiver(b, 0)
	var mu sync.Mutex
	queued := map[string]time.Time{}
	var lat []time.Duration
	got := make(chan struct{}, 1<<16)
	rcv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(rcv.secret, r.Header, body, time.Now(), time.Minute); err != nil {
			b.Error(err)
		}
		mu.Lock()
		lat = append(lat, time.Since(queued[r.Header.Get(notify.HeaderID)]))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		got <- struct{}{}
	})
	s, err := store.Open(context.Background(), store.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	n, err := notify.New(notify.Config{Webhooks: []notify.WebhookConfig{rcv.config("bench")}, Workers: 8},
		notify.Deps{Store: s, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	payload, _ := json.Marshal(notify.Payload{TransferID: "t", Sender: "spiffe://a.example/p", Recipients: []string{"spiffe://b.example/t"}})
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d-%d", b.N, i)
		mu.Lock()
		queued[id] = time.Now()
		mu.Unlock()
		if err := s.EnqueueEvent(ctx, store.Event{ID: id, Kind: store.EventTransferReady, Subject: "t", Payload: payload}); err != nil {
			b.Fatal(err)
		}
		if paced {
			<-got
		}
	}
	if !paced {
		for range b.N {
			<-got
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
