package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/lexgate/lexgate/gateway/store"
)

// Deps are what a Notifier runs on. Log and Now may be nil.
type Deps struct {
	Store *store.Store
	Log   *slog.Logger
	Now   func() time.Time
}

// Notifier drives the store's outbox: it routes each new event to its
// endpoints, delivers what is due, retries failures with exponential
// backoff and parks a delivery after Config.MaxAttempts failures. Run it
// with [Notifier.Run]. Several gateways may run one on the same store (the
// replicas of a cluster on PostgreSQL): Run holds the store's "notify"
// lock, so one of them delivers at a time and the others stand by.
type Notifier struct {
	cfg      Config
	store    *store.Store
	log      *slog.Logger
	now      func() time.Time
	webhooks map[string]*webhook // by endpoint, "webhook:NAME"
	mail     *mailer             // nil: email off
	dir      *directoryFile
	lastScan time.Time
}

// New checks cfg and builds a notifier; it sends nothing until Run.
func New(cfg Config, deps Deps) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil {
		return nil, errors.New("notify: a store is required")
	}
	cfg = cfg.withDefaults()
	n := &Notifier{cfg: cfg, store: deps.Store, log: deps.Log, now: deps.Now,
		webhooks: map[string]*webhook{}, dir: &directoryFile{path: cfg.Directory}}
	if n.log == nil {
		n.log = slog.Default()
	}
	if n.now == nil {
		n.now = time.Now
	}
	for _, wc := range cfg.Webhooks {
		w, err := newWebhook(wc)
		if err != nil {
			return nil, err
		}
		n.webhooks["webhook:"+wc.Name] = w
	}
	if cfg.Email.Enabled() {
		m, err := newMailer(cfg.Email)
		if err != nil {
			return nil, err
		}
		n.mail = m
		if _, err := n.dir.get(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// batch is how many events or deliveries one pass handles.
const batch = 256

// minPass spaces the notifier's passes: a busy store wakes it at every
// write (each upload chunk is one), and a burst of events is delivered in
// larger, parallel batches. An event waits at most this long for its pass.
const minPass = 20 * time.Millisecond

// LockName is the store lock ([store.Store.Lock]) a running notifier
// holds: of the gateways sharing one store, only its holder delivers,
// which keeps each event from being delivered once per replica.
const LockName = "notify"

// Run works through the outbox until ctx is done. It first waits for the
// store's [LockName] lock — another replica's notifier may hold it; this
// one takes over when that replica stops or dies (its database connection
// closes). Then it wakes when this process commits a write (at most every
// minPass), when the next retry is due, or every PollInterval: another
// replica's writes are seen at the poll, not at once.
func (n *Notifier) Run(ctx context.Context) {
	var unlock func()
	for {
		var err error
		if unlock, err = n.store.Lock(ctx, LockName); err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		n.log.Error("notify: the notifier lock was not taken; trying again at the poll interval",
			"lock", LockName, "poll_interval", n.cfg.PollInterval, "err", err)
		if !sleep(ctx, n.cfg.PollInterval) {
			return
		}
	}
	defer unlock()
	n.log.Info("notify: delivering the outbox", "lock", LockName)
	var last time.Time
	for {
		if wait := minPass - time.Since(last); wait > 0 && !sleep(ctx, wait) {
			return
		}
		last = time.Now()
		changed := n.store.Changed()
		more, err := n.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.Error("notify: pass failed", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		if more {
			continue
		}
		wait := n.cfg.PollInterval
		if next, ok, err := n.store.NextDelivery(ctx); err == nil && ok {
			wait = min(wait, max(next.Sub(n.now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// sleep waits d, reporting false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Pass runs one round: the expiry scan when due, routing of new events,
// and the deliveries due now. more reports a full batch (call again).
func (n *Notifier) Pass(ctx context.Context) (more bool, err error) {
	if err := n.scanExpiring(ctx); err != nil {
		return false, err
	}
	routed, err := n.route(ctx)
	if err != nil {
		return false, err
	}
	due, err := n.store.DueDeliveries(ctx, n.now(), batch)
	if err != nil {
		return false, err
	}
	n.deliverAll(ctx, due)
	return routed == batch || len(due) == batch, nil
}

// scanExpiring prunes the outbox and queues one expiry warning per
// transfer that expires within ExpiryWarning, at most once per
// PollInterval. The event's ID is derived from the transfer, so a warning
// is queued once however often it is seen.
func (n *Notifier) scanExpiring(ctx context.Context) error {
	now := n.now()
	if now.Sub(n.lastScan) < n.cfg.PollInterval {
		return nil
	}
	if _, err := n.store.PruneOutbox(ctx, now.Add(-n.cfg.Keep)); err != nil {
		return err
	}
	if n.cfg.ExpiryWarning >= 0 {
		if err := n.warnExpiring(ctx, now); err != nil {
			return err
		}
	}
	n.lastScan = now
	return nil
}

// warnExpiring queues the expiry warnings due at now.
func (n *Notifier) warnExpiring(ctx context.Context, now time.Time) error {
	ts, err := n.store.ExpiringTransfers(ctx, now, now.Add(n.cfg.ExpiryWarning))
	if err != nil {
		return err
	}
	for _, t := range ts {
		var pending []string
		for _, r := range t.Recipients {
			if _, acked := t.Acked[r]; !acked {
				pending = append(pending, r)
			}
		}
		if len(pending) == 0 {
			continue
		}
		p, _ := json.Marshal(Payload{TransferID: t.ID, Sender: t.Sender, Matter: t.Matter, Recipients: pending,
			ExpiresAt: t.Obligations.ExpiresAt.UnixNano(), DecisionID: t.DecisionID})
		ev := store.Event{ID: "expiring-" + t.ID, Kind: store.EventTransferExpiring, Subject: t.ID, Payload: p}
		if err := n.store.EnqueueEvent(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// route records the deliveries of each new event.
func (n *Notifier) route(ctx context.Context) (int, error) {
	evs, err := n.store.UnroutedEvents(ctx, batch)
	if err != nil {
		return 0, err
	}
	dir, derr := n.dir.get()
	if derr != nil && n.mail != nil {
		n.log.Warn("notify: directory", "err", derr)
	}
	for _, ev := range evs {
		routes := n.routes(dir, ev)
		if err := n.store.RouteEvent(ctx, ev.ID, routes, n.now()); err != nil {
			return 0, err
		}
	}
	return len(evs), nil
}

// routes lists the endpoints an event goes to: each subscribed webhook,
// and one email per address the directory gives.
func (n *Notifier) routes(dir *Directory, ev store.Event) []store.Route {
	var out []store.Route
	for ep, w := range n.webhooks {
		if subscribed(w.cfg.Events, ev.Kind) {
			out = append(out, store.Route{Endpoint: ep})
		}
	}
	if n.mail != nil && n.mail.mails(ev.Kind) {
		p, err := parsePayload(ev)
		if err != nil {
			n.log.Error("notify: event not routed to email", "event", ev.ID, "err", err)
			return out
		}
		for _, a := range addresses(dir, ev.Kind, p) {
			out = append(out, store.Route{Endpoint: "email:" + a, Target: []string{a}})
		}
	}
	return out
}

// drainGrace is how long deliveries in flight may still take once Run's
// context is done: an endpoint that accepted an event gets it recorded, so
// it is not sent again after the restart.
const drainGrace = 5 * time.Second

// deliverAll attempts the deliveries with up to Workers at once. When ctx
// ends, no new attempt starts, and those in flight get drainGrace.
func (n *Notifier) deliverAll(ctx context.Context, ds []store.Delivery) {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(drainGrace, cancel) })
	defer stop()
	sem := make(chan struct{}, n.cfg.Workers)
	var wg sync.WaitGroup
	for _, d := range ds {
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n.attempt(dctx, d)
		}()
	}
	wg.Wait()
}

// attempt delivers once and records the outcome.
func (n *Notifier) attempt(ctx context.Context, d store.Delivery) {
	err := n.deliver(ctx, d)
	now := n.now()
	log := n.log.With("event", d.Event.ID, "kind", d.Event.Kind, "endpoint", d.Endpoint)
	if err == nil {
		if err := n.store.DeliverySucceeded(context.WithoutCancel(ctx), d.Event.ID, d.Endpoint, now); err != nil {
			log.Error("notify: delivered, but not recorded (it will be sent again)", "err", err)
		}
		return
	}
	if ctx.Err() != nil {
		return // shutting down: the delivery stays due
	}
	attempts := d.Attempts + 1
	park := attempts >= n.cfg.MaxAttempts
	next := now.Add(n.backoff(attempts))
	reason := err.Error()
	if len(reason) > 500 {
		reason = reason[:500]
	}
	if park {
		log.Warn("notify: delivery parked after repeated failures; retry it with `lexgate notify retry`", "attempts", attempts, "err", reason)
	} else {
		log.Info("notify: delivery failed; will retry", "attempts", attempts, "next", next, "err", reason)
	}
	if err := n.store.DeliveryFailed(context.WithoutCancel(ctx), d.Event.ID, d.Endpoint, reason, next, park); err != nil {
		log.Error("notify: recording a failed delivery", "err", err)
	}
}

// backoff is the delay after the attempts-th failure: Backoff doubled per
// earlier failure, capped at MaxBackoff, less up to a tenth at random so
// that endpoints coming back are not hit all at once.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.cfg.Backoff
	for i := 1; i < attempts && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxBackoff)
	return d - time.Duration(rand.Int64N(int64(d/10)+1))
}

func (n *Notifier) deliver(ctx context.Context, d store.Delivery) error {
	p, err := parsePayload(d.Event)
	if err != nil {
		return err
	}
	if w := n.webhooks[d.Endpoint]; w != nil {
		return w.deliver(ctx, d.Event, p, n.now())
	}
	if addr, ok := strings.CutPrefix(d.Endpoint, "email:"); ok && n.mail != nil {
		dir, _ := n.dir.get()
		return n.mail.deliver(ctx, dir, d.Event, p, addr, n.now())
	}
	return fmt.Errorf("endpoint %s is no longer configured", d.Endpoint)
}

// Parked lists the deliveries that gave up, for admins.
func (n *Notifier) Parked(ctx context.Context) ([]store.Delivery, error) {
	return n.store.Deliveries(ctx, store.DeliveryParked)
}

// Retry re-queues a parked delivery now.
func (n *Notifier) Retry(ctx context.Context, eventID, endpoint string) error {
	return n.store.RetryDelivery(ctx, eventID, endpoint, n.now())
}
