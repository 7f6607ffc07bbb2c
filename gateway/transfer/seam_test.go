package transfer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/internal/enginetest"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
	"github.com/lexgate/lexgate/gateway/transfer"
	"github.com/lexgate/lexgate/policies"
)

// The core's own tests on the storage seam: real drivers (SQLite, and
// PostgreSQL shared by two replicas), the real policy engine and a real audit
// log — one log for every replica, as a cluster runs.

// countingLog passes every call to a real audit log and counts entries by kind.
type countingLog struct {
	*audit.Log
	mu    sync.Mutex
	kinds map[audit.Kind]int
}

func (c *countingLog) Append(ctx context.Context, ev audit.Event) (uint64, error) {
	i, err := c.Log.Append(ctx, ev)
	if err == nil {
		c.mu.Lock()
		c.kinds[ev.Kind]++
		c.mu.Unlock()
	}
	return i, err
}

func (c *countingLog) count(k audit.Kind) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kinds[k]
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openLog(t *testing.T) *countingLog {
	lg, err := audit.Open(t.Context(), audit.Config{Dir: filepath.Join(t.TempDir(), "audit"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	return &countingLog{Log: lg, kinds: map[audit.Kind]int{}}
}

func newCore(t *testing.T, st transfer.Store, lg transfer.Auditor) *transfer.Service {
	pol, err := policy.Start(t.Context(), policy.Config{FS: policies.FS, Logger: quiet, SkipTests: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pol.Close() })
	svc, err := transfer.New(transfer.Config{SweepBatch: 7}, transfer.Deps{Store: st, Policy: pol,
		Bundles: x509bundle.NewSet(), Audit: lg, Log: quiet, GatewayID: "spiffe://harbor-law.example/gateway"})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// replicaStores returns two stores of one deployment: the same store twice
// on SQLite (one process owns it), two replicas of one database on
// PostgreSQL.
var replicaStores = []struct {
	name string
	open func(t *testing.T) (a, b *store.Store)
}{
	{"sqlite", func(t *testing.T) (*store.Store, *store.Store) {
		s := openStore(t, store.Config{Dir: t.TempDir()})
		return s, s
	}},
	{"postgres", func(t *testing.T) (*store.Store, *store.Store) {
		dsn := postgresDatabase(t)
		dir := t.TempDir()
		cfg := store.Config{Dir: dir, Driver: store.DriverPostgres, Postgres: store.PostgresConfig{DSN: dsn}}
		cfg.Replica = "r1"
		a := openStore(t, cfg)
		cfg.Replica = "r2"
		return a, openStore(t, cfg)
	}},
}

func openStore(t *testing.T, cfg store.Config) *store.Store {
	s, err := store.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	pgOnce sync.Once
	pg     *enginetest.Postgres
	pgErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pg != nil {
		pg.Stop()
	}
	os.Exit(code)
}

func postgresDatabase(t *testing.T) string {
	if _, err := enginetest.PostgresBin(); err != nil {
		enginetest.Missing(t, "PostgreSQL", err)
	}
	pgOnce.Do(func() { pg, pgErr = enginetest.StartPostgres(context.Background()) })
	if pgErr != nil {
		t.Fatalf("start PostgreSQL: %v", pgErr)
	}
	dsn, err := pg.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// expired stores n transfers of matter that expired an hour ago.
func expired(t *testing.T, st *store.Store, matter string, n int) []string {
	var ids []string
	for i := range n {
		var seed [8]byte
		binary.BigEndian.PutUint64(seed[:], uint64(i))
		h := sha256.Sum256(append(seed[:], matter...))
		tr := &store.Transfer{Sender: "spiffe://harbor-law.example/paralegal/alice",
			Recipients: []string{"spiffe://manila-lpo.example/site/review-team"}, Matter: matter,
			CiphertextSize: 1 << 20, CiphertextSHA256: hex.EncodeToString(h[:]), ManifestHash: hex.EncodeToString(h[:]),
			Obligations: store.Obligations{RetentionDays: 1, ExpiresAt: time.Now().Add(-time.Hour)}}
		if err := st.CreateTransfer(t.Context(), tr); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tr.ID)
	}
	return ids
}

// TestSweepOnReplicas: the retention sweeper runs on two replicas at once;
// every expired transfer is destroyed, certified and logged exactly once.
func TestSweepOnReplicas(t *testing.T) {
	for _, d := range replicaStores {
		t.Run(d.name, func(t *testing.T) {
			a, b := d.open(t)
			lg := openLog(t)
			cores := []*transfer.Service{newCore(t, a, lg), newCore(t, b, lg)}
			ids := expired(t, a, "HL-2026-0042", 30)
			reports := make([]transfer.SweepReport, 2)
			var wg sync.WaitGroup
			for i, c := range cores {
				wg.Go(func() {
					var err error
					if reports[i], err = c.Sweep(t.Context()); err != nil {
						t.Errorf("Sweep on replica %d: %v", i+1, err)
					}
				})
			}
			wg.Wait()
			if got := reports[0].Destroyed + reports[1].Destroyed; got != len(ids) {
				t.Errorf("destroyed %d + %d, want %d in all", reports[0].Destroyed, reports[1].Destroyed, len(ids))
			}
			if got := lg.count(audit.KindDestruction); got != len(ids) {
				t.Errorf("%d destruction entries logged, want %d", got, len(ids))
			}
			for _, id := range ids {
				if _, err := b.DestructionOf(t.Context(), id); err != nil {
					t.Errorf("DestructionOf(%s): %v", id, err)
				}
			}
		})
	}
}

// TestSweepObeysSharedHold: a hold placed through one replica keeps the
// other replica's sweeper from deleting the matter, at once; lifted through
// the other, the next sweep deletes.
func TestSweepObeysSharedHold(t *testing.T) {
	for _, d := range replicaStores {
		t.Run(d.name, func(t *testing.T) {
			a, b := d.open(t)
			lg := openLog(t)
			onB := newCore(t, b, lg)
			ids := expired(t, a, "HL-2026-0099", 3)
			if err := a.PlaceHold(t.Context(), store.Hold{Matter: "HL-2026-0099", By: "spiffe://harbor-law.example/legal/hold-officer",
				At: time.Now(), Reason: "litigation"}); err != nil {
				t.Fatal(err)
			}
			r, err := onB.Sweep(t.Context())
			if err != nil || r.Destroyed != 0 || r.Held != len(ids) {
				t.Fatalf("sweep under hold = %+v, %v; want all %d held", r, err, len(ids))
			}
			if _, err := b.LiftHold(t.Context(), "HL-2026-0099"); err != nil {
				t.Fatal(err)
			}
			onA := newCore(t, a, lg)
			if r, err := onA.Sweep(t.Context()); err != nil || r.Destroyed != len(ids) {
				t.Fatalf("sweep after lift = %+v, %v; want %d destroyed", r, err, len(ids))
			}
			for _, id := range ids {
				if _, err := b.Transfer(t.Context(), id); err == nil {
					t.Errorf("transfer %s survived the sweep", id)
				}
			}
		})
	}
}

// TestReconcileOnReplicas: two replicas start at once and find the same
// stored facts unlogged (a crash came between commit and log): each fact is
// logged once.
func TestReconcileOnReplicas(t *testing.T) {
	for _, d := range replicaStores {
		t.Run(d.name, func(t *testing.T) {
			a, b := d.open(t)
			lg := openLog(t)
			cores := []*transfer.Service{newCore(t, a, lg), newCore(t, b, lg)}
			const n = 5
			for i := range n {
				content := []byte(fmt.Sprintf("ciphertext %d", i))
				sum := sha256.Sum256(content)
				tr := &store.Transfer{Sender: "spiffe://harbor-law.example/paralegal/alice",
					Recipients: []string{"spiffe://manila-lpo.example/site/review-team"}, Matter: "HL-2026-0042",
					CiphertextSize: int64(len(content)), CiphertextSHA256: hex.EncodeToString(sum[:]),
					ManifestHash: hex.EncodeToString(sum[:])}
				if err := a.CreateTransfer(t.Context(), tr); err != nil {
					t.Fatal(err)
				}
				if _, err := b.WriteAt(t.Context(), tr.ID, 0, bytes.NewReader(content), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for _, c := range cores {
				wg.Go(func() {
					if _, err := c.Reconcile(t.Context()); err != nil {
						t.Errorf("Reconcile: %v", err)
					}
				})
			}
			wg.Wait()
			if c, u := lg.count(audit.KindTransferCreated), lg.count(audit.KindUploadComplete); c != n || u != n {
				t.Errorf("logged %d creations and %d upload completions, want %d each", c, u, n)
			}
		})
	}
}
