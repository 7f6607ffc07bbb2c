// Package gateway wires lexgate's parts into one server: the SPIFFE identity
// source, the OPA policy engine, the store, the transfer core, and the HTTP/3 +
// HTTPS front on one port number, plus /healthz (liveness), /readyz (readiness:
// SVID, policy, audit log and store) and /metrics on a loopback admin listener.
//
//	g, err := gateway.New(ctx, cfg, logger) // binds the listeners
//	err = g.Serve(ctx)                      // until ctx is done, then a graceful shutdown
//
// Run does both. Main is the lexgate command ("lexgate serve", "lexgate certs").
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/httpapi"
	"github.com/lexgate/lexgate/gateway/identity"
	"github.com/lexgate/lexgate/gateway/notify"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/risk"
	"github.com/lexgate/lexgate/gateway/sftpfront"
	"github.com/lexgate/lexgate/gateway/siem"
	"github.com/lexgate/lexgate/gateway/store"
	"github.com/lexgate/lexgate/gateway/transfer"
	"github.com/lexgate/lexgate/policies"
)

// Flow-control windows sized for a fast long link: large enough that one stream is
// not window-bound at ~1 Gbit/s and 150 ms, small enough to bound memory. The
// initial QUIC windows are already a long link's bandwidth-delay product (8 MiB:
// 50 MB/s at 150 ms), so an upload does not wait for auto-tuning to grow them.
const (
	streamWindow        = 32 << 20
	connWindow          = 64 << 20
	initialStreamWindow = 8 << 20
	initialConnWindow   = 16 << 20
)

// Gateway is a running lexgate server. Its zero value is not usable; call New.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	id      *identity.Source
	policy  *policy.Engine
	store   *store.Store
	audit   *audit.Log
	metrics *metrics
	// refusals counts refused client certificates by transport.
	refusals *prometheus.CounterVec

	tcpLn   net.Listener
	udpConn net.PacketConn
	adminLn net.Listener
	h2      *http.Server
	h3      *http3.Server
	quicTr  *quic.Transport // the UDP socket's QUIC transport, with the pre-auth cap
	// resetKey lets a restarted gateway reset the QUIC connections of the
	// process before it, so clients reconnect at once.
	resetKey *quic.StatelessResetKey
	admin    *http.Server
	sftp     *sftpfront.Server // nil unless sftp.listen is set
	svc      *transfer.Service
	live     *liveConns // live connections by SPIFFE ID, for revocations
	revs     *revocationSync

	// sweeper is the retention sweeper's goroutine, started by Serve and
	// stopped by Shutdown (or Serve's end) before the store closes.
	sweepMu     sync.Mutex
	sweepCancel context.CancelFunc
	sweepDone   chan struct{}

	// notifier delivers the outbox (issue 21); bg runs it from Serve.
	notifier *notify.Notifier
	siem     *siem.Forwarder // nil unless siem.syslog.addr is set
	bg       background

	// inflight counts requests in handlers, so Close can let a cut upload record
	// its durable offset before the store closes.
	inflight sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// drainTimeout bounds how long Close waits for handlers whose connections it cut.
const drainTimeout = 10 * time.Second

func (g *Gateway) tracked(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.inflight.Add(1)
		defer g.inflight.Done()
		h.ServeHTTP(w, r)
	})
}

// waitHandlers waits for handlers to return, at most d.
func (g *Gateway) waitHandlers(d time.Duration) bool {
	done := make(chan struct{})
	go func() { g.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// New builds a gateway from cfg and binds its listeners, so Addr is known when it
// returns. log may be nil: a logger is made from cfg.Log on stderr.
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Gateway, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = NewLogger(cfg.Log, os.Stderr)
	}
	log = slog.New(httpapi.LogHandler(log.Handler()))
	g := &Gateway{cfg: cfg, log: log, metrics: newMetrics()}
	g.refusals = newRefusalCounter(g.metrics.reg)
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	if err := cfg.checkKeyFiles(); err != nil {
		return nil, err
	}
	if cfg.Admin != "off" && cfg.AdminPublic && !cfg.AdminMTLS && !isLoopback(adminHost(cfg.Admin)) {
		log.Warn("admin listener is not on loopback (admin_listen_public: true): /metrics and /healthz are plain HTTP without authentication", "admin_listen", cfg.Admin)
	}
	idcfg := cfg.Identity
	idcfg.Logger = log
	if g.id, err = identity.New(ctx, idcfg); err != nil {
		return nil, fmt.Errorf("gateway: identity: %w", err)
	}
	if err := cfg.checkOwnID(g.id.ID()); err != nil {
		return nil, fmt.Errorf("gateway: refusing to start: %w", err)
	}
	g.registerSVIDMetrics(g.metrics.reg)
	pcfg := cfg.Policy
	pcfg.Logger = log
	if pcfg.Dir == "" && pcfg.FS == nil {
		pcfg.FS = policies.FS
	}
	if pcfg.DecisionLog == "off" {
		pcfg.DecisionLog = ""
	}
	// Without a valid policy set the gateway still starts and refuses every
	// request until a reload brings a good one; policy.Start logs why.
	var perr error
	if g.policy, perr = policy.Start(ctx, pcfg); g.policy == nil {
		return nil, fmt.Errorf("gateway: policy: %w", perr)
	}
	if g.store, err = store.Open(ctx, cfg.Store); err != nil {
		return nil, fmt.Errorf("gateway: store: %w", err)
	}
	g.live = newLiveConns(g.id.IsRevoked)
	g.revs = newRevocationSync(g)
	if err := g.revs.refresh(ctx); err != nil {
		return nil, err
	}
	acfg := cfg.Audit
	acfg.Logger = log
	acfg.Operator = g.id.ID().String()
	if acfg.Origin == "" {
		acfg.Origin = g.id.ID().TrustDomain().Name() + "/lexgate-audit"
	}
	if g.audit, err = audit.Open(ctx, acfg); err != nil {
		return nil, fmt.Errorf("gateway: audit: %w", err)
	}
	log.Info("audit log open", "dir", acfg.Dir, "log_key", g.audit.VerifierKey())
	// The baselines live in the store: they survive a restart and the
	// replicas of a cluster share them (docs/risk.md).
	tracker, err := risk.New(cfg.Risk, g.store, log)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	riskAlerts := prometheus.NewCounter(prometheus.CounterOpts{Name: "lexgate_risk_alerts_total",
		Help: "Requests whose statistical risk score reached the alert threshold (see policies/risk.rego)."})
	g.metrics.reg.MustRegister(riskAlerts)
	svc, err := transfer.New(cfg.Transfer, transfer.Deps{Risk: tracker, RiskAlert: riskAlerts.Inc, Store: g.store, Policy: g.policy,
		Bundles: g.id, Revoked: g.id.IsRevoked, Log: log, Audit: g.audit,
		Custodial: custodialAccounts(cfg.SFTP), GatewayID: g.id.ID().String(), StaticHold: g.policy.MatterHeld,
		Revoker: revoker{g}, Refresh: g.sharedRefresh()})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// A crash may have stored what it did not log: log it before serving.
	if _, err := svc.Reconcile(ctx); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.svc = svc
	if g.notifier, g.siem, err = newForwarders(cfg, pcfg.DecisionLog, g.store, g.audit, log); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	front := httpapi.New(svc, log, g.metrics)
	front.ServeLog(g.audit.Handler())
	var handler http.Handler = front
	handler = g.tracked(handler)
	if err := g.listen(); err != nil {
		return nil, err
	}
	cc, sndbuf := tcpTuning(g.tcpLn)
	log.Info("tcp tuning", "congestion_control", cc, "send_buffer", sndbuf)
	g.h2 = g.newTCPServer(handler)
	if g.udpConn != nil {
		if g.resetKey, err = loadResetKey(cfg.Store.Dir); err != nil {
			return nil, err
		}
		g.h3 = g.newQUICServer(handler)
	}
	if g.adminLn != nil {
		h := g.adminHandler()
		if cfg.AdminMTLS {
			tc := g.id.ServerTLSConfig()
			tc.NextProtos = []string{"http/1.1"}
			g.adminLn, h = tls.NewListener(g.adminLn, tc), g.adminMTLS(h)
		}
		g.admin = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)}
	}
	if cfg.SFTP.Enabled() {
		g.sftp, err = sftpfront.New(ctx, cfg.SFTP, sftpfront.Deps{Core: svc, Sealer: g.id, Bundles: g.id, Log: log, Metrics: g.metrics.reg,
			DefaultHostKey: defaultHostKey(cfg.Store.Dir)})
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		log.Info("sftp front", "addr", g.sftp.Addr(), "host_key_fingerprint", g.sftp.Fingerprint())
	}
	return g, nil
}

// listen binds TCP and UDP on the same port number (choosing a free one for port 0)
// and the admin listener.
func (g *Gateway) listen() error {
	var err error
	for attempt := 0; ; attempt++ {
		lc := net.ListenConfig{Control: tcpControl}
		if g.tcpLn, err = lc.Listen(context.Background(), "tcp", g.cfg.Listen); err != nil {
			return fmt.Errorf("gateway: listen tcp %s: %w", g.cfg.Listen, err)
		}
		if g.cfg.DisableQUIC {
			break
		}
		host, _, _ := net.SplitHostPort(g.cfg.Listen)
		port := g.tcpLn.Addr().(*net.TCPAddr).Port
		g.udpConn, err = net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			break
		}
		g.tcpLn.Close()
		g.tcpLn = nil
		if _, p, _ := net.SplitHostPort(g.cfg.Listen); p != "0" || attempt == 10 {
			return fmt.Errorf("gateway: listen udp on port %d: %w", port, err)
		}
	}
	if g.cfg.Admin != "off" {
		if g.adminLn, err = net.Listen("tcp", g.cfg.Admin); err != nil {
			return fmt.Errorf("gateway: admin listen %s: %w", g.cfg.Admin, err)
		}
	}
	return nil
}

func (g *Gateway) newTCPServer(h http.Handler) *http.Server {
	tlsConf := countRefusals(g.id.ServerTLSConfig(), g.refusals.WithLabelValues("tcp"))
	tlsConf.ClientAuth = tls.RequestClientCert // counted when refused: see handshake.go
	// HTTP/1.1 beside HTTP/2: lex moves bulk ciphertext over HTTP/1.1, where a body
	// is plain TLS records with no framing or flow-control overhead.
	tlsConf.NextProtos = []string{"h2", "http/1.1"}
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: g.cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       g.cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    g.cfg.Limits.MaxHeaderBytes,
		ConnState:         g.connState,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		Protocols:         protocols(true, true),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          g.cfg.Limits.MaxStreamsPerConn,
			MaxReceiveBufferPerConnection: connWindow,
			MaxReceiveBufferPerStream:     streamWindow,
			MaxReadFrameSize:              1 << 20,
		},
	}
}

func protocols(h2, h1 bool) *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP2(h2)
	p.SetHTTP1(h1)
	return p
}

func (g *Gateway) newQUICServer(h http.Handler) *http3.Server {
	tlsConf := countRefusals(g.id.ServerTLSConfig(), g.refusals.WithLabelValues("quic"))
	// Over QUIC a handshake without a client certificate would fail inside quic-go
	// with no trace in our logs; requesting (not requiring) one lets the SPIFFE
	// verifier refuse an empty chain and log why. The outcome is the same refusal.
	tlsConf.ClientAuth = tls.RequestClientCert
	pre := newQUICPreauth(g.cfg.Limits.MaxPreAuthPerAddr, g.log, g.metrics.reg)
	g.quicTr = &quic.Transport{Conn: g.udpConn, ConnContext: pre.accept, StatelessResetKey: g.resetKey}
	return &http3.Server{
		Handler:        h,
		ConnContext:    g.trackQUIC(pre.handshakeDone),
		TLSConfig:      http3.ConfigureTLSConfig(tlsConf),
		MaxHeaderBytes: g.cfg.Limits.MaxHeaderBytes,
		IdleTimeout:    g.cfg.Limits.IdleTimeout,
		Logger:         g.log,
		QUICConfig: &quic.Config{
			Allow0RTT:                      false, // nothing that changes state may be replayed
			HandshakeIdleTimeout:           g.cfg.Limits.ReadHeaderTimeout,
			MaxIdleTimeout:                 g.cfg.Limits.IdleTimeout,
			MaxIncomingStreams:             int64(g.cfg.Limits.MaxStreamsPerConn),
			InitialStreamReceiveWindow:     initialStreamWindow,
			MaxStreamReceiveWindow:         streamWindow,
			InitialConnectionReceiveWindow: initialConnWindow,
			MaxConnectionReceiveWindow:     connWindow,
			KeepAlivePeriod:                15 * time.Second,
		},
	}
}

// Addr is the API's host:port (TCP and, unless disabled, UDP).
func (g *Gateway) Addr() string { return g.tcpLn.Addr().String() }

// AdminAddr is the admin listener's host:port, or "" when it is off.
func (g *Gateway) AdminAddr() string {
	if g.adminLn == nil {
		return ""
	}
	return g.adminLn.Addr().String()
}

// SFTP is the SFTP front, or nil when it is off.
func (g *Gateway) SFTP() *sftpfront.Server { return g.sftp }

// LogKey is the audit log's public key (note verifier), what lex pins as log_key.
func (g *Gateway) LogKey() string { return g.audit.VerifierKey() }

// AuditAppended is one past the highest audit index this gateway appended.
func (g *Gateway) AuditAppended() uint64 { return g.audit.Appended() }

// AuditDir is where the audit log's tiles are.
func (g *Gateway) AuditDir() string { return g.audit.Dir() }

// ID is the gateway's own SPIFFE ID.
func (g *Gateway) ID() string { return g.id.ID().String() }

// Serve serves until ctx is done or a listener fails, then shuts down gracefully
// within cfg.ShutdownGrace. It returns nil after a clean shutdown.
func (g *Gateway) Serve(ctx context.Context) error {
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	run := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				errc <- fmt.Errorf("gateway: %s: %w", name, err)
			}
		}()
	}
	defer g.watchReload(ctx)()
	preauth := newPreauthListener(g.tcpLn, g.cfg.Limits.MaxPreAuthPerAddr, g.log, g.metrics.reg)
	run("https", func() error { return g.h2.ServeTLS(preauth, "", "") })
	if g.h3 != nil {
		run("http3", g.serveQUIC)
	}
	if g.admin != nil {
		run("admin", func() error { return g.admin.Serve(g.adminLn) })
	}
	if g.sftp != nil {
		run("sftp", func() error { return g.sftp.Serve(ctx) })
	}
	g.startSweeper(ctx)
	g.startForwarders(ctx)
	g.log.Info("lexgate serving", "addr", g.Addr(), "quic", g.h3 != nil, "admin", g.AdminAddr(), "id", g.ID())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownGrace)
	defer cancel()
	if serr := g.Shutdown(sctx); err == nil {
		err = serr
	}
	wg.Wait()
	return err
}

// Shutdown stops accepting connections, lets requests in flight finish until ctx is
// done, then cuts what remains (an upload cut this way resumes from its durable
// offset) and releases everything. It is safe to call more than once.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.log.Info("lexgate shutting down")
	g.stopSweeper()
	g.bg.stop()
	if g.svc != nil {
		g.svc.StopWatches() // long polls answer now, not at the grace deadline
	}
	var errs []error
	var wg sync.WaitGroup
	if g.h3 != nil {
		wg.Add(1)
		go func() { defer wg.Done(); g.h3.Shutdown(ctx) }()
	}
	if g.h2 != nil {
		if err := g.h2.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
	}
	wg.Wait()
	if g.admin != nil {
		g.admin.Shutdown(ctx)
	}
	errs = append(errs, g.Close())
	return errors.Join(errs...)
}

// Close closes every listener and connection at once and releases the store,
// policy and identity. It is idempotent.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.stopSweeper()
		g.bg.stop()
		var errs []error
		if g.h3 != nil {
			g.h3.Close()
			g.quicTr.Close()
		}
		if g.h2 != nil {
			g.h2.Close()
		}
		if g.admin != nil {
			g.admin.Close()
		}
		if g.sftp != nil {
			g.sftp.Close() // uploads in flight are discarded: nothing half-stored
		}
		for _, c := range []interface{ Close() error }{g.tcpLn, g.udpConn, g.adminLn} {
			if c != nil {
				c.Close()
			}
		}
		// Handlers whose connections were just cut still record what arrived.
		if !g.waitHandlers(drainTimeout) {
			g.log.Warn("handlers still running after connections were closed; closing the store anyway")
		}
		if g.audit != nil {
			errs = append(errs, g.audit.Close())
		}
		if g.store != nil {
			errs = append(errs, g.store.Close())
		}
		if g.policy != nil {
			errs = append(errs, g.policy.Close())
		}
		if g.id != nil {
			errs = append(errs, g.id.Close())
		}
		g.closeErr = errors.Join(errs...)
	})
	return g.closeErr
}

// Run builds a gateway from cfg and serves until ctx is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	g, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return g.Serve(ctx)
}
