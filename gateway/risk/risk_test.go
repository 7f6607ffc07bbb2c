package risk_test

import (
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

// history is 30 working days of 4 sends of about 10 MB a day to Manila,
// between 09:00 and 12:00 UTC.
func history(t *testing.T) (*risk.Tracker, time.Time) {
	t.Helper()
	tr, err := risk.New(risk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	day0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for d := range 30 {
		for i := range 4 {
			at := day0.AddDate(0, 0, d).Add(time.Duration(9+i%3) * time.Hour)
			tr.Sent(alice, at, int64(9_000_000+(d%5)*500_000), []string{"manila-lpo.example"})
		}
	}
	return tr, day0.AddDate(0, 0, 30)
}

// TestOrdinaryNotFlagged: a send like the usual ones scores 0.
func TestOrdinaryNotFlagged(t *testing.T) {
	tr, today := history(t)
	r := tr.Assess(risk.Request{ID: alice, Action: "send", Time: today.Add(10 * time.Hour), Bytes: 10_000_000, Orgs: []string{"manila-lpo.example"}})
	if r.Score != 0 || len(flagged(r)) != 0 {
		t.Errorf("ordinary send: %+v", r)
	}
}

// TestBurst: after the same history, each unusual trait is its own signal,
// and together they pass the policy's threshold (70).
func TestBurst(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(tr *risk.Tracker, now time.Time)
		req   func(now time.Time) risk.Request
		want  []string
	}{
		{"volume", nil, func(now time.Time) risk.Request {
			return risk.Request{ID: alice, Action: "send", Time: now.Add(10 * time.Hour), Bytes: 2_000_000_000, Orgs: []string{"manila-lpo.example"}}
		}, []string{"volume_z"}},
		{"new org at night", nil, func(now time.Time) risk.Request {
			return risk.Request{ID: alice, Action: "send", Time: now.Add(3 * time.Hour), Bytes: 10_000_000, Orgs: []string{"bogota-lpo.example"}}
		}, []string{"new_recipient_org", "off_hours"}},
		{"count", func(tr *risk.Tracker, now time.Time) {
			for i := range 40 {
				tr.Sent(alice, now.Add(10*time.Hour+time.Duration(i)*time.Second), 1000, []string{"manila-lpo.example"})
			}
		}, func(now time.Time) risk.Request {
			return risk.Request{ID: alice, Action: "send", Time: now.Add(11 * time.Hour), Bytes: 1000, Orgs: []string{"manila-lpo.example"}}
		}, []string{"count_z"}},
		{"refusals and downloads", func(tr *risk.Tracker, now time.Time) {
			for i := range 5 {
				tr.Refused(alice, now.Add(10*time.Hour+time.Duration(i)*time.Minute))
			}
			for i := range 30 {
				tr.Downloaded(alice, now.Add(10*time.Hour+5*time.Minute+time.Duration(i)*time.Second))
			}
		}, func(now time.Time) risk.Request {
			return risk.Request{ID: alice, Action: "receive", Time: now.Add(10*time.Hour + 6*time.Minute)}
		}, []string{"download_burst", "refusal_burst"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, today := history(t)
			if c.setup != nil {
				c.setup(tr, today)
			}
			r := tr.Assess(c.req(today))
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
	r := tr.Assess(risk.Request{ID: alice, Action: "send", Time: today.Add(3 * time.Hour), Bytes: 2_000_000_000, Orgs: []string{"bogota-lpo.example"}})
	if r.Score < 70 {
		t.Errorf("a large night send to a new organisation scores %d: %+v", r.Score, r)
	}
}

// TestNewIdentityNotJudged: without MinDays of history, volume is not judged.
func TestNewIdentityNotJudged(t *testing.T) {
	tr, _ := risk.New(risk.Config{})
	r := tr.Assess(risk.Request{ID: alice, Action: "send", Time: time.Now(), Bytes: 1 << 40, Orgs: []string{"x"}})
	if r.Score != 0 {
		t.Errorf("first send ever: %+v", r)
	}
}
