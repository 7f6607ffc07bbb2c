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
//
// The baselines live in a Store, one record per identity: the gateway's
// metadata store, so that they survive a restart and the replicas of a
// cluster share them (a burst spread over replicas is one burst). An
// assessment reads the identity's record once; every observation updates it
// atomically (the store reads, changes and writes it in one transaction
// holding the record's lock), so concurrent replicas lose no counts.
// A record the store cannot read is an error, never an empty baseline: the
// caller refuses rather than judge an identity without its history.
package risk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

// Store keeps one opaque record per identity. [store.Store] implements it
// in the gateway's metadata store; [NewMemory] keeps it in this process.
type Store interface {
	// RiskBaseline returns id's record, nil when it has none.
	RiskBaseline(ctx context.Context, id string) ([]byte, error)
	// UpdateRiskBaseline replaces id's record by update(old) atomically:
	// no other update of id runs between the read of old and the write.
	// update may run more than once (a retried transaction) and must not
	// have other effects.
	UpdateRiskBaseline(ctx context.Context, id string, at time.Time, update func(old []byte) ([]byte, error)) error
}

// ErrUnavailable wraps every failure to read or decode a baseline: the
// assessment of the request is unknown, and the caller must not treat it as
// a score of 0.
var ErrUnavailable = errors.New("risk: the identity's baseline could not be read")

// memory is a Store in this process, for a gateway without a shared store
// and for tests.
type memory struct {
	mu  sync.Mutex
	ids map[string][]byte
}

// NewMemory returns a Store that keeps the records in this process: they
// are lost when it exits.
func NewMemory() Store { return &memory{ids: map[string][]byte{}} }

func (m *memory) RiskBaseline(_ context.Context, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ids[id], nil
}

func (m *memory) UpdateRiskBaseline(_ context.Context, id string, _ time.Time, update func([]byte) ([]byte, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := update(m.ids[id])
	if err != nil {
		return err
	}
	m.ids[id] = b
	return nil
}

// Tracker judges requests against the baselines in its Store and feeds
// observations into them. It is safe for concurrent use, and several
// trackers (the replicas of a cluster) may share one Store.
type Tracker struct {
	cfg   Config
	store Store
	log   *slog.Logger

	mu      sync.Mutex
	pending []observation // observations the store refused, retried first
}

// maxPending bounds the observations kept for a store that is down; the
// oldest are dropped first (and logged).
const maxPending = 4096

// maxTimes bounds the refusal and download times kept per identity: a
// burst signal's value counts up to it.
const maxTimes = 1024

// recordVersion is the version of the stored record's layout.
const recordVersion = 1

// baseline is one identity's record, as stored (JSON).
type baseline struct {
	V         int             `json:"v"`
	Day       time.Time       `json:"day"` // the UTC day being counted
	DayBytes  float64         `json:"day_bytes"`
	DayCount  float64         `json:"day_count"`
	Days      int             `json:"days"` // past days folded into the means
	MeanBytes float64         `json:"mean_bytes"`
	VarBytes  float64         `json:"var_bytes"`
	MeanCount float64         `json:"mean_count"`
	VarCount  float64         `json:"var_count"`
	Sends     int             `json:"sends"`
	Orgs      map[string]bool `json:"orgs,omitempty"`
	Hours     [24]int         `json:"hours"`
	Refusals  []time.Time     `json:"refusals,omitempty"`
	Downloads []time.Time     `json:"downloads,omitempty"`
}

// decode reads a stored record; nil is an identity without history.
func decode(raw []byte) (*baseline, error) {
	b := &baseline{V: recordVersion}
	if raw != nil {
		if err := json.Unmarshal(raw, b); err != nil {
			return nil, fmt.Errorf("%w: a corrupt record (%v): delete its row in risk_baselines to start its history again", ErrUnavailable, err)
		}
		if b.V != recordVersion {
			return nil, fmt.Errorf("%w: record version %d, this program reads %d: run the newer gateway", ErrUnavailable, b.V, recordVersion)
		}
	}
	if b.Orgs == nil {
		b.Orgs = map[string]bool{}
	}
	return b, nil
}

// New returns a tracker with cfg's settings over the baselines in st (nil:
// in this process only, see [NewMemory]); log receives the observations
// that could not be recorded (nil: slog.Default()).
func New(cfg Config, st Store, log *slog.Logger) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		st = NewMemory()
	}
	if log == nil {
		log = slog.Default()
	}
	return &Tracker{cfg: cfg.withDefaults(), store: st, log: log}, nil
}

// load reads id's baseline, rolled forward to now.
func (t *Tracker) load(ctx context.Context, id string, now time.Time) (*baseline, error) {
	raw, err := t.store.RiskBaseline(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	b, err := decode(raw)
	if err != nil {
		return nil, err
	}
	t.roll(b, now)
	return b, nil
}

// roll folds the days before now's into the means: each finished day
// (including idle ones, as zeros) updates them once.
func (t *Tracker) roll(b *baseline, now time.Time) {
	today := now.UTC().Truncate(24 * time.Hour)
	if b.Day.IsZero() {
		b.Day = today
		return
	}
	for b.Day.Before(today) {
		a := t.cfg.Alpha
		if b.Days == 0 {
			b.MeanBytes, b.MeanCount = b.DayBytes, b.DayCount
		} else {
			d := b.DayBytes - b.MeanBytes
			b.MeanBytes += a * d
			b.VarBytes = (1 - a) * (b.VarBytes + a*d*d)
			d = b.DayCount - b.MeanCount
			b.MeanCount += a * d
			b.VarCount = (1 - a) * (b.VarCount + a*d*d)
		}
		b.Days++
		b.DayBytes, b.DayCount = 0, 0
		b.Day = b.Day.Add(24 * time.Hour)
		if b.Days > 400 { // a long idle gap: the rest are zeros too
			b.Day = today
		}
	}
}

// observation is one fact fed into a baseline.
type observation struct {
	kind  byte // 's'ent, 'r'efused, 'd'ownloaded
	id    string
	at    time.Time
	bytes int64
	orgs  []string
}

func (o observation) apply(t *Tracker, b *baseline) {
	t.roll(b, o.at)
	switch o.kind {
	case 's':
		b.DayBytes += float64(o.bytes)
		b.DayCount++
		b.Sends++
		b.Hours[o.at.UTC().Hour()]++
		for _, g := range o.orgs {
			b.Orgs[g] = true
		}
	case 'r':
		b.Refusals = capped(append(recent(b.Refusals, o.at, time.Hour), o.at))
	case 'd':
		b.Downloads = capped(append(recent(b.Downloads, o.at, 10*time.Minute), o.at))
	}
}

// observe records o, after any observation a failing store left pending.
// When the store refuses it, o is kept (bounded) and retried with the next
// observation, and the error is returned for the caller to log.
func (t *Tracker) observe(ctx context.Context, o observation) error {
	t.mu.Lock()
	todo := append(t.pending, o)
	t.pending = nil
	t.mu.Unlock()
	for i, o := range todo {
		if err := t.store.UpdateRiskBaseline(ctx, o.id, o.at, func(old []byte) ([]byte, error) {
			b, err := decode(old)
			if err != nil {
				return nil, err
			}
			o.apply(t, b)
			return json.Marshal(b)
		}); err != nil {
			t.keep(todo[i:])
			return fmt.Errorf("risk: record an observation of %s (kept to retry): %w", o.id, err)
		}
	}
	return nil
}

// keep puts observations back in the pending list, dropping the oldest
// beyond maxPending.
func (t *Tracker) keep(obs []observation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = append(obs, t.pending...)
	if n := len(t.pending) - maxPending; n > 0 {
		t.log.Error("risk: observations dropped: the store refused them too long; the baselines undercount", "dropped", n)
		t.pending = slices.Clone(t.pending[n:])
	}
}

// Sent records a send by id of bytes to recipients of orgs at time at.
func (t *Tracker) Sent(ctx context.Context, id string, at time.Time, bytes int64, orgs []string) error {
	return t.observe(ctx, observation{kind: 's', id: id, at: at, bytes: bytes, orgs: orgs})
}

// Refused records a refused request of id.
func (t *Tracker) Refused(ctx context.Context, id string, at time.Time) error {
	return t.observe(ctx, observation{kind: 'r', id: id, at: at})
}

// Downloaded records a download by id.
func (t *Tracker) Downloaded(ctx context.Context, id string, at time.Time) error {
	return t.observe(ctx, observation{kind: 'd', id: id, at: at})
}

// recent keeps the times within window before now (times from replicas
// whose clocks differ may be out of order).
func recent(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	out := make([]time.Time, 0, len(ts)+1)
	for _, x := range ts {
		if now.Sub(x) <= window {
			out = append(out, x)
		}
	}
	return out
}

// capped keeps the newest maxTimes entries of ts.
func capped(ts []time.Time) []time.Time {
	if len(ts) > maxTimes {
		return ts[len(ts)-maxTimes:]
	}
	return ts
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
// It reads the identity's baseline once; an error (wrapping ErrUnavailable)
// means the assessment is unknown.
func (t *Tracker) Assess(ctx context.Context, r Request) (Risk, error) {
	b, err := t.load(ctx, r.ID, r.Time)
	if err != nil {
		return Risk{}, err
	}
	var sigs []Signal
	add := func(name string, v float64, flag bool) { sigs = append(sigs, Signal{name, round(v), flag}) }
	if r.Action == "send" {
		zb, zc := 0.0, 0.0
		if b.Days >= t.cfg.MinDays {
			zb = z(b.DayBytes+float64(r.Bytes), b.MeanBytes, b.VarBytes)
			zc = z(b.DayCount+1, b.MeanCount, b.VarCount)
		}
		add("volume_z", zb, zb >= t.cfg.ZFlag)
		add("count_z", zc, zc >= t.cfg.ZFlag)
		newOrg := 0.0
		for _, o := range r.Orgs {
			if !b.Orgs[o] {
				newOrg = 1
			}
		}
		add("new_recipient_org", newOrg, newOrg == 1 && b.Sends >= t.cfg.MinSends)
		share := 0.0
		if b.Sends > 0 {
			share = float64(b.Hours[r.Time.UTC().Hour()]) / float64(b.Sends)
		}
		add("off_hours", share, b.Sends >= t.cfg.MinSends && share < 0.02)
	}
	nr := len(recent(b.Refusals, r.Time, time.Hour))
	add("refusal_burst", float64(nr), nr >= t.cfg.RefusalBurst)
	nd := len(recent(b.Downloads, r.Time, 10*time.Minute))
	add("download_burst", float64(nd), nd >= t.cfg.DownloadBurst)
	score := 0
	for _, s := range sigs {
		if s.Flagged {
			score += weights[s.Name]
		}
	}
	return Risk{Score: min(score, 100), Signals: sigs}, nil
}

// z is the z-score of x against a mean and variance, with a floor on the
// deviation so a perfectly regular history does not make every change
// infinite: a tenth of the mean, at least 1.
func z(x, mean, variance float64) float64 {
	sd := math.Max(math.Sqrt(variance), math.Max(mean/10, 1))
	return (x - mean) / sd
}

func round(v float64) float64 { return math.Round(v*100) / 100 }
