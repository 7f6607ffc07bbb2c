package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/internal/enginetest"
	"github.com/lexgate/lexgate/gateway/notify"
	"github.com/lexgate/lexgate/gateway/store"
)

// TestOneNotifierPerStore: two gateways' notifiers on one store (one
// SQLite store in a process; two replicas of one PostgreSQL database)
// deliver each event once. While the first holds the store's "notify"
// lock the second delivers nothing; when the first stops, the second
// takes over and delivers what is queued next, on either replica.
func TestOneNotifierPerStore(t *testing.T) {
	for _, driver := range []string{store.DriverSQLite, store.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			s1, s2 := replicaStores(t, driver)
			ra, rb := newReceiver(t, 0), newReceiver(t, 0)
			// Both name their endpoint "soc": an event either routes
			// is deliverable by either, but each reaches only its own
			// notifier's receiver, which shows who delivered it.
			a := startNotifier(t, s1, ra.config("soc"))
			enqueue(t, s1, "first")
			ra.waitKinds(map[string]int{store.EventTransferRefused: 1})

			b := startNotifier(t, s2, rb.config("soc"))
			for i := range 20 {
				enqueue(t, []*store.Store{s1, s2}[i%2], fmt.Sprintf("while-a-%d", i))
			}
			ra.waitKinds(map[string]int{store.EventTransferRefused: 21})
			if got := rb.acceptedKinds(); len(got) != 0 {
				t.Errorf("the standby notifier delivered %v while the other held the lock", got)
			}

			a.stop()
			for i := range 10 {
				enqueue(t, []*store.Store{s1, s2}[i%2], fmt.Sprintf("after-a-%d", i))
			}
			rb.waitKinds(map[string]int{store.EventTransferRefused: 10})
			b.stop()
			for _, r := range []*receiver{ra, rb} {
				r.mu.Lock()
				for id, n := range r.accepted {
					if n != 1 || r.attempts[id] != 1 {
						t.Errorf("event %s accepted %d times in %d attempts, want once", id, n, r.attempts[id])
					}
				}
				r.mu.Unlock()
			}
			if got := ra.acceptedKinds()[store.EventTransferRefused]; got != 21 {
				t.Errorf("first notifier delivered %d events, want 21", got)
			}
		})
	}
}

// replicaStores opens two stores on one database: the same SQLite store
// twice, or two PostgreSQL replicas sharing a spool.
func replicaStores(t *testing.T, driver string) (*store.Store, *store.Store) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if driver == store.DriverSQLite {
		s, err := store.Open(ctx, store.Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, s
	}
	dsn, err := postgresCluster(t).NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out [2]*store.Store
	for i := range out {
		s, err := store.Open(ctx, store.Config{Dir: filepath.Join(dir, fmt.Sprint("r", i)), SpoolDir: filepath.Join(dir, "spool"),
			Driver: store.DriverPostgres, Postgres: store.PostgresConfig{DSN: dsn}, Replica: fmt.Sprint("r", i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

// postgresCluster starts a private PostgreSQL cluster for t, stopped at
// its end; it skips (fails under CI=true) where PostgreSQL is missing.
func postgresCluster(t *testing.T) *enginetest.Postgres {
	t.Helper()
	return enginetest.NewPostgres(t)
}

// running is a notifier's Run in progress.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the Run and waits for it to return (and release its lock).
func (r *running) stop() {
	r.cancel()
	<-r.done
}

// startNotifier runs a notifier on s delivering to one webhook; it polls
// every 50ms, so another replica's events are seen without a wake-up.
func startNotifier(t *testing.T, s *store.Store, wc notify.WebhookConfig) *running {
	t.Helper()
	n, err := notify.New(notify.Config{Webhooks: []notify.WebhookConfig{wc}, PollInterval: 50 * time.Millisecond},
		notify.Deps{Store: s, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		n.Run(ctx)
	}()
	t.Cleanup(r.stop)
	return r
}

// enqueue queues a refusal event named id on s.
func enqueue(t *testing.T, s *store.Store, id string) {
	t.Helper()
	p, _ := json.Marshal(map[string]any{"decision_id": id, "sender": "spiffe://a.example/alice", "reasons": []any{}})
	if err := s.EnqueueEvent(context.Background(), store.Event{ID: "refused-" + id, Kind: store.EventTransferRefused,
		Subject: id, Payload: p}); err != nil {
		t.Fatal(err)
	}
}
