package risk_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/risk"
)

const alice = "spiffe://harbor-law.example/paralegal/alice"

func flagged(r risk.Risk) map[string]bool {
	out := map[string]bool{}
	for _, s := range r.Signals {
		if s.Flagged {
			out[s.Name] = true
		}
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func assess(t *testing.T, tr *risk.Tracker, r risk.Request) risk.Risk {
	t.Helper()
	got, err := tr.Assess(t.Context(), r)
	if err != nil {
		t.Fatalf("Assess: %v", err)
	}
	return got
}

// history is 30 working days of 4 sends of about 10 MB a day to Manila,
// between 09:00 and 12:00 UTC.
func history(t *testing.T) (*risk.Tracker, time.Time) {
	t.Helper()
	tr, err := risk.New(risk.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	day0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for d := range 30 {
		for i := range 4 {
			at := day0.AddDate(0, 0, d).Add(time.Duration(9+i%3) * time.Hour)
			must(t, tr.Sent(t.Context(), alice, at, int64(9_000_000+(d%5)*500_000), []string{"manila-lpo.example"}))
		}
	}
	return tr, day0.AddDate(0, 0, 30)
}

// TestOrdinaryNotFlagged: a send like the usual ones scores 0.
func TestOrdinaryNotFlagged(t *testing.T) {
	tr, today := history(t)
	r := assess(t, tr, risk.Request{ID: alice, Action: "send", Time: today.Add(10 * time.Hour), Bytes: 10_000_000, Orgs: []string{"manila-lpo.example"}})
	if r.Score != 0 || len(flagged(r)) != 0 {
		t.Errorf("ordinary send: %+v", r)
	}
}

// TestBurst: after the same history, each unusual trait is its own signal,
// and together they pass the policy's threshold (70).
func TestBurst(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, tr *risk.Tracker, now time.Time)
		req   func(now time.Time) risk.Request
		want  []string
	}{
		{"volume", nil, func(now time.Time) risk.Request {
			return risk.Request{ID: alice, Action: "send", Time: now.Add(10 * time.Hour), Bytes: 2_000_000_000, Orgs: []string{"manila-lpo.example"}}
		}, []string{"volume_z"}},
		{"new org at night", nil, func(now time.Time) risk.Request {
			return risk.Request{ID: alice, Action: "send", Time: now.Add(3 * time.Hour), Bytes: 10_000_000, Orgs: []string{"bogota-lpo.example"}}
		}, []string{"new_recipient_org", "off_hours"}},
		{"count", func(t *testing.T, tr *risk.Tracker, now time.Time) {
			for i := range 40 {
				must(t, tr.Sent(t.Context(), alice, now.Add(10*time.Hour+time.Duration(i)*time.Second), 1000, []string{"manila-lpo.example"}))
			}
		}, func(now time.Time) risk.Request {
			return risk.Request{ID: alice, Action: "send", Time: now.Add(11 * time.Hour), Bytes: 1000, Orgs: []string{"manila-lpo.example"}}
		}, []string{"count_z"}},
		{"refusals and downloads", func(t *testing.T, tr *risk.Tracker, now time.Time) {
			for i := range 5 {
				must(t, tr.Refused(t.Context(), alice, now.Add(10*time.Hour+time.Duration(i)*time.Minute)))
			}
			for i := range 30 {
				must(t, tr.Downloaded(t.Context(), alice, now.Add(10*time.Hour+5*time.Minute+time.Duration(i)*time.Second)))
			}
		}, func(now time.Time) risk.Request {
			return risk.Request{ID: alice, Action: "receive", Time: now.Add(10*time.Hour + 6*time.Minute)}
		}, []string{"download_burst", "refusal_burst"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, today := history(t)
			if c.setup != nil {
				c.setup(t, tr, today)
			}
			r := assess(t, tr, c.req(today))
			got := flagged(r)
			if len(got) != len(c.want) {
				t.Errorf("flagged %v, want %v (%+v)", got, c.want, r)
			}
			for _, w := range c.want {
				if !got[w] {
					t.Errorf("%s not flagged: %+v", w, r)
				}
			}
		})
	}
	tr, today := history(t)
	r := assess(t, tr, risk.Request{ID: alice, Action: "send", Time: today.Add(3 * time.Hour), Bytes: 2_000_000_000, Orgs: []string{"bogota-lpo.example"}})
	if r.Score < 70 {
		t.Errorf("a large night send to a new organisation scores %d: %+v", r.Score, r)
	}
}

// TestNewIdentityNotJudged: without MinDays of history, volume is not judged.
func TestNewIdentityNotJudged(t *testing.T) {
	tr, _ := risk.New(risk.Config{}, nil, nil)
	r := assess(t, tr, risk.Request{ID: alice, Action: "send", Time: time.Now(), Bytes: 1 << 40, Orgs: []string{"x"}})
	if r.Score != 0 {
		t.Errorf("first send ever: %+v", r)
	}
}

// failing is a store that fails while down: the fault a stopped database
// causes, injected so the tracker's answer to it is tested here.
type failing struct {
	risk.Store
	mu   sync.Mutex
	down bool
}

var errDown = errors.New("database is down")

func (f *failing) isDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

func (f *failing) set(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *failing) RiskBaseline(ctx context.Context, id string) ([]byte, error) {
	if f.isDown() {
		return nil, errDown
	}
	return f.Store.RiskBaseline(ctx, id)
}

func (f *failing) UpdateRiskBaseline(ctx context.Context, id string, at time.Time, fn func([]byte) ([]byte, error)) error {
	if f.isDown() {
		return errDown
	}
	return f.Store.UpdateRiskBaseline(ctx, id, at, fn)
}

// TestStoreDown: a baseline the store cannot read is an error wrapping
// ErrUnavailable, never a score of 0; observations the store refused are
// recorded once it is back, before the next one.
func TestStoreDown(t *testing.T) {
	st := &failing{Store: risk.NewMemory()}
	tr, err := risk.New(risk.Config{RefusalBurst: 3}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	must(t, tr.Refused(t.Context(), alice, now))
	st.set(true)
	if _, err := tr.Assess(t.Context(), risk.Request{ID: alice, Action: "send", Time: now}); !errors.Is(err, risk.ErrUnavailable) || !errors.Is(err, errDown) {
		t.Fatalf("Assess with the store down: %v, want ErrUnavailable wrapping the cause", err)
	}
	for i := range 2 {
		if err := tr.Refused(t.Context(), alice, now.Add(time.Duration(i+1)*time.Minute)); !errors.Is(err, errDown) {
			t.Fatalf("Refused with the store down: %v", err)
		}
	}
	st.set(false)
	if r := assess(t, tr, risk.Request{ID: alice, Action: "send", Time: now.Add(5 * time.Minute)}); flagged(r)["refusal_burst"] {
		t.Fatalf("the refused observations were recorded before the store was written: %+v", r)
	}
	must(t, tr.Downloaded(t.Context(), alice, now.Add(6*time.Minute)))
	r := assess(t, tr, risk.Request{ID: alice, Action: "send", Time: now.Add(7 * time.Minute)})
	if !flagged(r)["refusal_burst"] {
		t.Errorf("the refusals kept while the store was down were lost: %+v", r)
	}
}

// TestCorruptRecord: a record the tracker cannot decode is ErrUnavailable.
func TestCorruptRecord(t *testing.T) {
	st := risk.NewMemory()
	st.UpdateRiskBaseline(t.Context(), alice, time.Now(), func([]byte) ([]byte, error) { return []byte("{not json"), nil })
	tr, _ := risk.New(risk.Config{}, st, nil)
	if _, err := tr.Assess(t.Context(), risk.Request{ID: alice, Action: "send", Time: time.Now()}); !errors.Is(err, risk.ErrUnavailable) {
		t.Fatalf("Assess of a corrupt record: %v", err)
	}
	if err := tr.Sent(t.Context(), alice, time.Now(), 1, nil); !errors.Is(err, risk.ErrUnavailable) {
		t.Fatalf("Sent onto a corrupt record: %v", err)
	}
}

// TestSharedStore: two trackers on one store (two replicas) see one
// baseline, and concurrent observations lose no count.
func TestSharedStore(t *testing.T) {
	st := risk.NewMemory()
	cfg := risk.Config{DownloadBurst: 200}
	a, _ := risk.New(cfg, st, nil)
	b, _ := risk.New(cfg, st, nil)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 200 {
		tr := a
		if i%2 == 1 {
			tr = b
		}
		wg.Go(func() {
			if err := tr.Downloaded(context.Background(), alice, now.Add(time.Duration(i)*time.Millisecond)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	r := assess(t, a, risk.Request{ID: alice, Action: "receive", Time: now.Add(time.Second)})
	if !flagged(r)["download_burst"] {
		t.Errorf("200 downloads over two trackers: %+v", r)
	}
}
