package transfer_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/internal/enginetest"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/risk"
	"github.com/lexgate/lexgate/gateway/store"
	"github.com/lexgate/lexgate/gateway/transfer"
	"github.com/lexgate/lexgate/policies"
)

// TestRiskStoreDown: when the store holding the baselines cannot be read —
// a closed SQLite store, a stopped PostgreSQL server — a decision is refused
// with risk.unavailable (and audited), never judged as a score of 0. Once
// PostgreSQL is back, decisions are allowed again, and the gateway's own
// refusal did not count towards the identity's refusal burst.
func TestRiskStoreDown(t *testing.T) {
	for _, c := range []struct {
		name string
		// open returns the store, how to take it down, and how to bring it
		// back (nil: it stays down).
		open func(t *testing.T) (st *store.Store, down func(), up func())
	}{
		{"sqlite", func(t *testing.T) (*store.Store, func(), func()) {
			st := openStore(t, store.Config{Dir: t.TempDir()})
			return st, func() { st.Close() }, nil
		}},
		{"postgres", func(t *testing.T) (*store.Store, func(), func()) {
			pg := enginetest.NewPostgres(t)
			dsn, err := pg.NewDatabase(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			st := openStore(t, store.Config{Dir: t.TempDir(), Driver: store.DriverPostgres,
				Postgres: store.PostgresConfig{DSN: dsn}, Replica: "r1"})
			return st, func() {
					if err := pg.StopServer(t.Context()); err != nil {
						t.Fatal(err)
					}
				}, func() {
					if err := pg.Start(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, down, up := c.open(t)
			lg := openLog(t)
			pol, err := policy.Start(t.Context(), policy.Config{FS: policies.FS, Logger: quiet, SkipTests: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pol.Close() })
			tr, err := risk.New(risk.Config{}, st, quiet)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := transfer.New(transfer.Config{}, transfer.Deps{Store: st, Policy: pol, Risk: tr,
				Bundles: x509bundle.NewSet(), Audit: lg, Log: quiet, GatewayID: "spiffe://harbor-law.example/gateway"})
			if err != nil {
				t.Fatal(err)
			}
			alice := spiffeid.RequireFromString("spiffe://harbor-law.example/paralegal/alice")
			if _, err := svc.Inbox(t.Context(), alice); err != nil {
				t.Fatalf("inbox with the store up: %v", err)
			}
			decisions := lg.count(audit.KindDecision)
			down()
			_, err = svc.Inbox(t.Context(), alice)
			var de *transfer.DeniedError
			if !errors.As(err, &de) || len(de.Decision.Reasons) != 1 || de.Decision.Reasons[0].Code != "risk.unavailable" {
				t.Fatalf("inbox with the store down: %v, want a refusal with risk.unavailable", err)
			}
			if lg.count(audit.KindDecision) != decisions+1 {
				t.Error("the refusal was not audited")
			}
			if up == nil {
				return
			}
			up()
			if _, err := svc.Inbox(t.Context(), alice); err != nil {
				t.Fatalf("inbox with the store back: %v", err)
			}
			// An observation records any the store refused first: none
			// was kept for the risk.unavailable refusal.
			now := time.Now()
			if err := tr.Downloaded(context.Background(), alice.String(), now); err != nil {
				t.Fatal(err)
			}
			r, err := tr.Assess(t.Context(), risk.Request{ID: alice.String(), Action: "list_inbox", Time: now})
			if err != nil {
				t.Fatal(err)
			}
			if i := slices.IndexFunc(r.Signals, func(s risk.Signal) bool { return s.Name == "refusal_burst" }); i < 0 || r.Signals[i].Value != 0 {
				t.Errorf("the risk.unavailable refusal counted towards a burst: %+v", r)
			}
		})
	}
}

// riskHistory feeds tr 30 days of 4 sends of about 10 MB a day to one
// organisation, between 09:00 and 12:00 UTC, and returns the next day.
func riskHistory(t *testing.T, tr *risk.Tracker, id string) time.Time {
	t.Helper()
	day0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for d := range 30 {
		for i := range 4 {
			at := day0.AddDate(0, 0, d).Add(time.Duration(9+i%3) * time.Hour)
			if err := tr.Sent(t.Context(), id, at, int64(9_000_000+(d%5)*500_000), []string{"manila-lpo.example"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return day0.AddDate(0, 0, 30)
}

func riskFlagged(r risk.Risk) []string {
	var out []string
	for _, s := range r.Signals {
		if s.Flagged {
			out = append(out, s.Name)
		}
	}
	return out
}

// TestRiskVolumeAfterRestart: 30 days of history recorded in a SQLite store
// judge the sends of a tracker started on the store opened again (a
// restarted gateway): an ordinary send is not flagged, a volume burst is.
func TestRiskVolumeAfterRestart(t *testing.T) {
	const alice = "spiffe://harbor-law.example/paralegal/alice"
	dir := t.TempDir()
	st := openStore(t, store.Config{Dir: dir})
	tr, err := risk.New(risk.Config{}, st, quiet)
	if err != nil {
		t.Fatal(err)
	}
	today := riskHistory(t, tr, alice)
	st.Close()

	st = openStore(t, store.Config{Dir: dir})
	tr, err = risk.New(risk.Config{}, st, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		bytes int64
		want  []string
	}{
		{"ordinary", 10_000_000, nil},
		{"volume burst", 2_000_000_000, []string{"volume_z"}},
	} {
		r, err := tr.Assess(t.Context(), risk.Request{ID: alice, Action: "send", Time: today.Add(10 * time.Hour),
			Bytes: c.bytes, Orgs: []string{"manila-lpo.example"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := riskFlagged(r); !slices.Equal(got, c.want) {
			t.Errorf("%s after the restart: flagged %q, want %q (%+v)", c.name, got, c.want, r)
		}
	}
}

// TestRiskTrackersOnReplicas: two trackers on two replicas' stores of one
// PostgreSQL database record downloads at once; every download is counted
// in the one baseline both read.
func TestRiskTrackersOnReplicas(t *testing.T) {
	const alice = "spiffe://harbor-law.example/paralegal/alice"
	a, b := replicaStores[1].open(t)
	cfg := risk.Config{DownloadBurst: 100}
	ta, _ := risk.New(cfg, a, quiet)
	tb, _ := risk.New(cfg, b, quiet)
	now := time.Now()
	start := make(chan struct{})
	errs := make(chan error, 100)
	for i := range 100 {
		tr := []*risk.Tracker{ta, tb}[i%2]
		go func() {
			<-start
			errs <- tr.Downloaded(context.Background(), alice, now.Add(time.Duration(i)*time.Millisecond))
		}()
	}
	close(start)
	for range 100 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for name, tr := range map[string]*risk.Tracker{"a": ta, "b": tb} {
		r, err := tr.Assess(t.Context(), risk.Request{ID: alice, Action: "receive", Time: now.Add(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(r.Signals, func(s risk.Signal) bool { return s.Name == "download_burst" })
		if r.Signals[i].Value != 100 || !r.Signals[i].Flagged {
			t.Errorf("replica %s: %+v, want 100 downloads, flagged", name, r.Signals[i])
		}
	}
}
