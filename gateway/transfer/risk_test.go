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
