// Package risk keeps a statistical baseline of each identity's activity on
// the gateway and says how unusual a request is against it. It is plain
// statistics — exponentially weighted means and variances, counts over
// sliding windows — not a model that learns anything else.
//
// Per identity it keeps:
//
//   - the bytes and number of transfers sent per UTC day, as an
//     exponentially weighted mean and variance over past days (Config.Alpha);
//   - the recipient organisations it has sent to;
//   - how many of its sends fell in each hour of the day (UTC);
//   - the times of its recent refusals and downloads.
//
// Assess turns these into named signals (Signal) and a score from 0 to 100
// that the gateway gives the policy as input.risk and input.risk_score.
// Baselines live in memory: a restarted gateway starts learning again, so a
// new gateway flags nothing until an identity has MinDays of history.
package risk

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config tunes the baselines and the score; the zero value is a working default.
type Config struct {
	// Alpha is the weight of the newest day in the daily means (default 0.2).
	Alpha float64 `yaml:"alpha"`
	// MinDays is how many past days an identity needs before its volume and
	// count are judged (default 5).
	MinDays int `yaml:"min_days"`
	// MinSends is how many past sends an identity needs before a new
	// recipient organisation or an unusual hour is flagged (default 20).
	MinSends int `yaml:"min_sends"`
	// ZFlag is the z-score from which a day's volume or count is unusual (default 3).
	ZFlag float64 `yaml:"z_flag"`
	// RefusalBurst is how many refusals in an hour make a burst (default 5).
	RefusalBurst int `yaml:"refusal_burst"`
	// DownloadBurst is how many downloads in ten minutes make a burst (default 30).
	DownloadBurst int `yaml:"download_burst"`
}

func (c Config) withDefaults() Config {
	if c.Alpha == 0 {
		c.Alpha = 0.2
	}
	if c.MinDays == 0 {
		c.MinDays = 5
	}
	if c.MinSends == 0 {
		c.MinSends = 20
	}
	if c.ZFlag == 0 {
		c.ZFlag = 3
	}
	if c.RefusalBurst == 0 {
		c.RefusalBurst = 5
	}
	if c.DownloadBurst == 0 {
		c.DownloadBurst = 30
	}
	return c
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	if c.Alpha < 0 || c.Alpha > 1 || c.MinDays < 0 || c.MinSends < 0 || c.ZFlag < 0 || c.RefusalBurst < 0 || c.DownloadBurst < 0 {
		return fmt.Errorf("risk: alpha must be in [0,1] and the other settings not negative")
	}
	return nil
}

// Signal is one named measure of how unusual a request is.
type Signal struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Flagged bool    `json:"flagged"`
}

// Risk is the assessment of one request: its signals and a score from 0
// (nothing unusual) to 100.
type Risk struct {
	Score   int      `json:"score"`
	Signals []Signal `json:"signals"`
}

// Flagged lists the names of the flagged signals, for logs and reasons.
func (r Risk) Flagged() string {
	var out []string
	for _, s := range r.Signals {
		if s.Flagged {
			out = append(out, fmt.Sprintf("%s=%.4g", s.Name, s.Value))
		}
	}
	return strings.Join(out, ", ")
}

// The weight of each flagged signal in the score.
var weights = map[string]int{
	"volume_z":          40,
	"count_z":           30,
	"new_recipient_org": 25,
	"off_hours":         15,
	"refusal_burst":     30,
	"download_burst":    30,
}

// Tracker keeps the baselines. It is safe for concurrent use.
type Tracker struct {
	cfg Config
	mu  sync.Mutex
	ids map[string]*baseline
}

type baseline struct {
	day       time.Time // the UTC day being counted
	dayBytes  float64
	dayCount  float64
	days      int // past days folded into the means
	meanBytes float64
	varBytes  float64
	meanCount float64
	varCount  float64
	sends     int
	orgs      map[string]bool
	hours     [24]int
	refusals  []time.Time
	downloads []time.Time
}

// New returns a tracker with cfg's settings.
func New(cfg Config) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Tracker{cfg: cfg.withDefaults(), ids: map[string]*baseline{}}, nil
}

func (t *Tracker) get(id string) *baseline {
	b := t.ids[id]
	if b == nil {
		b = &baseline{orgs: map[string]bool{}}
		t.ids[id] = b
	}
	return b
}

// roll folds the days before now's into the means: each finished day
// (including idle ones, as zeros) updates them once.
func (t *Tracker) roll(b *baseline, now time.Time) {
	today := now.UTC().Truncate(24 * time.Hour)
	if b.day.IsZero() {
		b.day = today
		return
	}
	for b.day.Before(today) {
		a := t.cfg.Alpha
		if b.days == 0 {
			b.meanBytes, b.meanCount = b.dayBytes, b.dayCount
		} else {
			d := b.dayBytes - b.meanBytes
			b.meanBytes += a * d
			b.varBytes = (1 - a) * (b.varBytes + a*d*d)
			d = b.dayCount - b.meanCount
			b.meanCount += a * d
			b.varCount = (1 - a) * (b.varCount + a*d*d)
		}
		b.days++
		b.dayBytes, b.dayCount = 0, 0
		b.day = b.day.Add(24 * time.Hour)
		if b.days > 400 { // a long idle gap: the rest are zeros too
			b.day = today
		}
	}
}

// Sent records a send by id of bytes to recipients of orgs at time at.
func (t *Tracker) Sent(id string, at time.Time, bytes int64, orgs []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.get(id)
	t.roll(b, at)
	b.dayBytes += float64(bytes)
	b.dayCount++
	b.sends++
	b.hours[at.UTC().Hour()]++
	for _, o := range orgs {
		b.orgs[o] = true
	}
}

// Refused records a refused request of id.
func (t *Tracker) Refused(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.get(id)
	b.refusals = append(recent(b.refusals, at, time.Hour), at)
}

// Downloaded records a download by id.
func (t *Tracker) Downloaded(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.get(id)
	b.downloads = append(recent(b.downloads, at, 10*time.Minute), at)
}

// recent keeps the times within window before now.
func recent(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > window {
		i++
	}
	return slices.Clone(ts[i:])
}

// Request is what Assess judges: a send (Bytes, Orgs) or any other action.
type Request struct {
	ID     string
	Action string
	Time   time.Time
	Bytes  int64    // a send's size (0 when not known yet)
	Orgs   []string // a send's recipient organisations
}

// Assess returns how unusual r is for its identity, as if it were allowed.
func (t *Tracker) Assess(r Request) Risk {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.get(r.ID)
	t.roll(b, r.Time)
	var sigs []Signal
	add := func(name string, v float64, flag bool) { sigs = append(sigs, Signal{name, round(v), flag}) }
	if r.Action == "send" {
		zb, zc := 0.0, 0.0
		if b.days >= t.cfg.MinDays {
			zb = z(b.dayBytes+float64(r.Bytes), b.meanBytes, b.varBytes)
			zc = z(b.dayCount+1, b.meanCount, b.varCount)
		}
		add("volume_z", zb, zb >= t.cfg.ZFlag)
		add("count_z", zc, zc >= t.cfg.ZFlag)
		newOrg := 0.0
		for _, o := range r.Orgs {
			if !b.orgs[o] {
				newOrg = 1
			}
		}
		add("new_recipient_org", newOrg, newOrg == 1 && b.sends >= t.cfg.MinSends)
		share := 0.0
		if b.sends > 0 {
			share = float64(b.hours[r.Time.UTC().Hour()]) / float64(b.sends)
		}
		add("off_hours", share, b.sends >= t.cfg.MinSends && share < 0.02)
	}
	nr := len(recent(b.refusals, r.Time, time.Hour))
	add("refusal_burst", float64(nr), nr >= t.cfg.RefusalBurst)
	nd := len(recent(b.downloads, r.Time, 10*time.Minute))
	add("download_burst", float64(nd), nd >= t.cfg.DownloadBurst)
	score := 0
	for _, s := range sigs {
		if s.Flagged {
			score += weights[s.Name]
		}
	}
	return Risk{Score: min(score, 100), Signals: sigs}
}

// z is the z-score of x against a mean and variance, with a floor on the
// deviation so a perfectly regular history does not make every change
// infinite: a tenth of the mean, at least 1.
func z(x, mean, variance float64) float64 {
	sd := math.Max(math.Sqrt(variance), math.Max(mean/10, 1))
	return (x - mean) / sd
}

func round(v float64) float64 { return math.Round(v*100) / 100 }
