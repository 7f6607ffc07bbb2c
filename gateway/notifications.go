package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/notify"
	"github.com/lexgate/lexgate/gateway/siem"
	"github.com/lexgate/lexgate/gateway/store"
)

// newForwarders builds the notifier and, when configured, the SIEM
// forwarder of the decision log at decisionLog.
func newForwarders(cfg Config, decisionLog string, s *store.Store, al *audit.Log, log *slog.Logger) (*notify.Notifier, *siem.Forwarder, error) {
	n, err := notify.New(cfg.Notify, notify.Deps{Store: s, Log: log})
	if err != nil || !cfg.SIEM.Enabled() {
		return n, nil, err
	}
	entries, err := newAuditEntries(al)
	if err != nil {
		return nil, nil, err
	}
	deps := siem.Deps{DecisionLog: decisionLog, Audit: entries, Log: log}
	if cfg.Store.Driver == store.DriverPostgres {
		deps.Shared = siemCursor{s}
	}
	f, err := siem.New(cfg.SIEM, deps)
	return n, f, err
}

// startForwarders starts the notifier and the SIEM forwarder.
func (g *Gateway) startForwarders(ctx context.Context) {
	var fwd func(context.Context)
	if g.siem != nil {
		fwd = g.siem.Run
	}
	var revs func(context.Context)
	if g.sharedStore() {
		revs = g.revs.watch
	}
	g.bg.start(ctx, g.notifier.Run, fwd, revs)
}

// background runs the gateway's long-lived workers besides the sweeper —
// the notifier (issue 21) and the SIEM forwarder — owned by the gateway:
// stop cancels them and waits.
type background struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (b *background) start(ctx context.Context, fns ...func(context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		return
	}
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel = cancel
	for _, fn := range fns {
		if fn == nil {
			continue
		}
		b.wg.Go(func() { fn(bctx) })
	}
}

// stop cancels the workers and waits for them; safe to call more than once.
func (b *background) stop() {
	b.mu.Lock()
	cancel := b.cancel
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	b.wg.Wait()
}

// Notifier is the gateway's notifier: admins list and retry parked
// deliveries through it.
func (g *Gateway) Notifier() *notify.Notifier { return g.notifier }

// resolveNotifyPaths makes the notify and siem sections' file names absolute.
func (c *Config) resolveNotifyPaths(abs func(*string)) {
	abs(&c.SIEM.Cursor)
	abs(&c.SIEM.Syslog.CAFile)
	abs(&c.SIEM.Syslog.CertFile)
	abs(&c.SIEM.Syslog.KeyFile)
	abs(&c.SIEM.OTLP.CAFile)
	abs(&c.SIEM.OTLP.CertFile)
	abs(&c.SIEM.OTLP.KeyFile)
	abs(&c.Notify.Directory)
	abs(&c.Notify.Email.CAFile)
	abs(&c.Notify.Email.PasswordFile)
	abs(&c.Notify.Email.Templates)
	for i := range c.Notify.Webhooks {
		abs(&c.Notify.Webhooks[i].CAFile)
		abs(&c.Notify.Webhooks[i].SecretFile)
	}
}

// parkedDelivery is one parked delivery as GET /notify/parked lists it.
type parkedDelivery struct {
	Event     string    `json:"event"`
	Kind      string    `json:"kind"`
	Subject   string    `json:"subject"`
	Endpoint  string    `json:"endpoint"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	Queued    time.Time `json:"queued"`
}

// notifyAdmin adds the outbox's admin endpoints to the loopback admin
// listener: GET /notify/parked lists the deliveries that gave up, POST
// /notify/retry?event=ID&endpoint=EP queues one again. /metrics gets
// lexgate_notify_parked_deliveries, for an alert.
func (g *Gateway) notifyAdmin(mux *http.ServeMux) {
	g.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lexgate_notify_parked_deliveries",
		Help: "Notification deliveries parked after repeated failures, waiting for an admin's retry.",
	}, func() float64 {
		ds, err := g.notifier.Parked(context.Background())
		if err != nil {
			return -1
		}
		return float64(len(ds))
	}))
	mux.HandleFunc("GET /notify/parked", func(w http.ResponseWriter, r *http.Request) {
		ds, err := g.notifier.Parked(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		out := make([]parkedDelivery, 0, len(ds))
		for _, d := range ds {
			out = append(out, parkedDelivery{Event: d.Event.ID, Kind: d.Event.Kind, Subject: d.Event.Subject,
				Endpoint: d.Endpoint, Attempts: d.Attempts, LastError: d.LastError, Queued: d.Event.Created})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /notify/retry", func(w http.ResponseWriter, r *http.Request) {
		ev, ep := r.URL.Query().Get("event"), r.URL.Query().Get("endpoint")
		err := g.notifier.Retry(r.Context(), ev, ep)
		switch {
		case errors.Is(err, store.ErrNotFound):
			http.Error(w, "no parked delivery of event "+ev+" to "+ep, http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			g.log.Info("notify: parked delivery queued again by an admin", "event", ev, "endpoint", ep)
			w.WriteHeader(http.StatusNoContent)
		}
	})
}
