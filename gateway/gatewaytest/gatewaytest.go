// Package gatewaytest starts a whole lexgate gateway for a test, like httptest
// starts a server: real listeners on 127.0.0.1 (QUIC and TCP on one port), a dev PKI
// with two organisations minted in a temporary directory, the embedded policies, and
// a store in t.TempDir(). It also writes a lex client config per identity.
//
//	env := gatewaytest.Start(t)
//	cfgPath := env.ClientConfig(gatewaytest.Alice) // for `lex --config cfgPath …`
package gatewaytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/identity"
	"github.com/lexgate/lexgate/gateway/store"
)

// The identities of the dev PKI (certs.DefaultDevSpec).
const (
	Alice     = "spiffe://harbor-law.example/paralegal/alice"
	DMS       = "spiffe://harbor-law.example/legacy/dms"
	Team      = "spiffe://manila-lpo.example/site/review-team"
	GatewayID = "spiffe://harbor-law.example/gateway"
)

// TrustDomains are the dev PKI's organisations.
var TrustDomains = []string{"harbor-law.example", "manila-lpo.example"}

// Env is a running gateway and the files around it.
type Env struct {
	t       testing.TB
	Dir     string // root of everything the env wrote
	PKI     string // certs.MintDev layout
	Config  gateway.Config
	Gateway *gateway.Gateway
	Addr    string // API host:port
	cancel  context.CancelFunc
	done    chan error
	logs    syncBuffer

	clientsMu sync.Mutex
	clients   []*http.Client // made by NewClient, for CloseClients
}

// CloseClients closes the connections of every client NewClient made (idle
// HTTP/2 connections; HTTP/3 transports with their UDP sockets), so a test can
// count what the gateway itself still holds. An HTTP/3 client is unusable
// afterwards.
func (e *Env) CloseClients() {
	e.clientsMu.Lock()
	defer e.clientsMu.Unlock()
	for _, hc := range e.clients {
		if tr, ok := hc.Transport.(*http3.Transport); ok {
			tr.Close()
			continue
		}
		hc.CloseIdleConnections()
	}
}

// Logs returns everything the gateway logged so far (JSON lines).
func (e *Env) Logs() string { return e.logs.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Option changes the gateway's config before it starts.
type Option func(*gateway.Config)

// WithoutQUIC serves TCP only, as behind a firewall that drops UDP.
func WithoutQUIC() Option { return func(c *gateway.Config) { c.DisableQUIC = true } }

// WithPolicyDir serves the policies in dir instead of the embedded ones.
func WithPolicyDir(dir string) Option { return func(c *gateway.Config) { c.Policy.Dir = dir } }

// WithRevoked denies ids at the handshake and in the core.
func WithRevoked(ids ...string) Option {
	return func(c *gateway.Config) { c.Identity.Revoked = append(c.Identity.Revoked, ids...) }
}

// WithConfig applies fn to the config.
func WithConfig(fn func(*gateway.Config)) Option { return Option(fn) }

// Start mints a dev PKI, starts a gateway on 127.0.0.1 and stops it at the end of the test.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	dir := t.TempDir()
	e := &Env{t: t, Dir: dir, PKI: filepath.Join(dir, "pki")}
	if err := certs.MintDev(e.PKI, certs.DefaultDevSpec()); err != nil {
		t.Fatalf("gatewaytest: mint dev PKI: %v", err)
	}
	cert, key := e.SVIDFiles(GatewayID)
	e.Config = gateway.Config{
		Listen:        "127.0.0.1:0",
		Admin:         "127.0.0.1:0",
		ShutdownGrace: 5 * time.Second,
		Identity:      identity.Config{SVIDCert: cert, SVIDKey: key, Bundles: e.Bundles()},
	}
	e.Config.Store.Dir = filepath.Join(dir, "data")
	for _, o := range opts {
		o(&e.Config)
	}
	e.start()
	t.Cleanup(e.Stop)
	return e
}

func (e *Env) start() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := io.MultiWriter(testWriter{e.t}, &e.logs)
	g, err := gateway.New(ctx, e.Config, slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		cancel()
		e.t.Fatalf("gatewaytest: start gateway: %v", err)
	}
	e.Gateway, e.Addr, e.cancel, e.done = g, g.Addr(), cancel, make(chan error, 1)
	go func() { e.done <- g.Serve(ctx) }()
}

// Stop shuts the gateway down gracefully and waits for it. It is idempotent.
func (e *Env) Stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Errorf("gatewaytest: gateway stopped with: %v", err)
	}
	e.cancel = nil
}

// Restart stops the gateway and starts it again on the same port and data, as after a crash or deploy.
func (e *Env) Restart() {
	e.t.Helper()
	e.Stop()
	e.Config.Listen = e.Addr
	e.start()
}

// SVIDFiles returns the certificate and key files of a dev PKI identity.
func (e *Env) SVIDFiles(id string) (cert, key string) {
	td, path, ok := strings.Cut(strings.TrimPrefix(id, "spiffe://"), "/")
	if !ok {
		e.t.Fatalf("gatewaytest: bad SPIFFE ID %q", id)
	}
	base := filepath.Join(e.PKI, td, strings.ReplaceAll(path, "/", "-"))
	return base + ".crt", base + ".key"
}

// Bundles maps each dev trust domain to its bundle file.
func (e *Env) Bundles() map[string]string {
	m := map[string]string{}
	for _, td := range TrustDomains {
		m[td] = filepath.Join(e.PKI, td, "bundle.pem")
	}
	return m
}

// ClientConfig writes a lex config for identity id (with its own identity file and
// cache directory under the env's dir) and returns its path. extra lines are
// appended verbatim.
func (e *Env) ClientConfig(id string, extra ...string) string {
	e.t.Helper()
	cert, key := e.SVIDFiles(id)
	home := filepath.Join(e.Dir, "clients", strings.NewReplacer("spiffe://", "", "/", "_").Replace(id))
	if err := os.MkdirAll(home, 0o700); err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "gateway: %s\ngateway_id: %s\nsvid_cert: %s\nsvid_key: %s\nidentity: %s\ncache_dir: %s\nbundles:\n",
		e.Addr, GatewayID, cert, key, filepath.Join(home, "identity.age"), filepath.Join(home, "cache"))
	for td, p := range e.Bundles() {
		fmt.Fprintf(&b, "  %s: %s\n", td, p)
	}
	fmt.Fprintf(&b, "log_key: %s\n", e.Gateway.LogKey()) // pinned, as at lex set-up
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	path := filepath.Join(home, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// FlipSpoolBit flips one bit of the byte at off in the only file of the
// store's spool, as a disk fault would after the file was stored. It fails
// the test unless the spool holds exactly one file with that byte.
func (e *Env) FlipSpoolBit(off int64) {
	e.t.Helper()
	files := e.SpoolFiles()
	if len(files) != 1 {
		e.t.Fatalf("spool: %q, want one file", files)
	}
	f, err := os.OpenFile(files[0], os.O_RDWR, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		e.t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b[:], off); err != nil {
		e.t.Fatal(err)
	}
}

// SpoolFiles lists the files in the store's spool directory, for "nothing stored" checks.
func (e *Env) SpoolFiles() []string {
	var out []string
	filepath.WalkDir(filepath.Join(e.Config.Store.Dir, "spool"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if _, fuzz := w.t.(*testing.F); fuzz {
		return len(p), nil // a fuzz target may not log through F; Env.Logs still has it
	}
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// StoreStats opens a second handle on the gateway's store and counts what it
// holds, for "nothing stored" and "one transfer" checks.
func (e *Env) StoreStats() store.Stats {
	e.t.Helper()
	s, err := store.Open(context.Background(), e.Config.Store)
	if err != nil {
		e.t.Fatalf("gatewaytest: open store: %v", err)
	}
	defer s.Close()
	st, err := s.Stats(context.Background())
	if err != nil {
		e.t.Fatalf("gatewaytest: store stats: %v", err)
	}
	return st
}

// StartReplica starts another gateway with e's PKI and identity, stopped at
// the end of the test: a replica of e's cluster when opts point both at the
// same shared store and audit log (store.driver postgres, audit.mysql). Its
// clients are made from the returned Env as usual.
func (e *Env) StartReplica(t testing.TB, opts ...Option) *Env {
	t.Helper()
	dir := t.TempDir()
	r := &Env{t: t, Dir: dir, PKI: e.PKI}
	r.Config = gateway.Config{
		Listen:        "127.0.0.1:0",
		Admin:         "127.0.0.1:0",
		ShutdownGrace: 5 * time.Second,
		Identity:      e.Config.Identity,
	}
	r.Config.Store.Dir = filepath.Join(dir, "data")
	for _, o := range opts {
		o(&r.Config)
	}
	r.start()
	t.Cleanup(r.Stop)
	return r
}
