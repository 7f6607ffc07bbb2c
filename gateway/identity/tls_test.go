package identity

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// testEnv is a gateway identity made from files, two organisations' CAs
// and a log to inspect.
type testEnv struct {
	harbor, manila *testCA
	gatewayID      spiffeid.ID
	src            *Source
	log            *syncBuffer
	clientBundles  *x509bundle.Set
}

const mallory = "spiffe://harbor-law.example/paralegal/mallory"

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{harbor: newTestCA(t, "harbor-law.example"), manila: newTestCA(t, "manila-lpo.example"), log: &syncBuffer{}}
	gw := e.harbor.svid(t, "/gateway", nil)
	e.gatewayID = gw.ID
	certPath, keyPath := writeSVID(t, dir, "gateway", gw)
	src, err := New(t.Context(), Config{
		SVIDCert: certPath,
		SVIDKey:  keyPath,
		Bundles: map[string]string{
			"harbor-law.example": writeBundle(t, dir, e.harbor),
			"manila-lpo.example": writeBundle(t, dir, e.manila),
		},
		Revoked: []string{mallory},
		Logger:  slog.New(slog.NewTextHandler(e.log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	e.src = src
	e.clientBundles = x509bundle.NewSet(e.harbor.bundle(), e.manila.bundle())
	return e
}

// handshake is what the server saw of one connection.
type handshake struct {
	id  spiffeid.ID
	err error
}

// serve runs a TLS server on 127.0.0.1:0 with cfg. Each connection's
// handshake result is sent on the returned channel; a verified peer is sent
// its own SPIFFE ID back, one line.
func serve(t *testing.T, cfg *tls.Config) (string, <-chan handshake) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan handshake, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				tc := conn.(*tls.Conn)
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tc.HandshakeContext(t.Context()); err != nil {
					results <- handshake{err: err}
					return
				}
				cs := tc.ConnectionState()
				id, err := PeerID(&cs)
				if err == nil {
					_, err = tc.Write([]byte(id.String() + "\n"))
				}
				results <- handshake{id: id, err: err}
			})
		}
	})
	return ln.Addr().String(), results
}

// dial connects to addr with cfg and returns the line the server sent.
func dial(t *testing.T, addr string, cfg *tls.Config) (string, error) {
	t.Helper()
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

func receive(t *testing.T, results <-chan handshake) handshake {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(time.Minute):
		t.Fatal("the server saw no handshake")
		return handshake{}
	}
}

func TestServerAcceptsBothTrustDomains(t *testing.T) {
	e := newTestEnv(t)
	addr, results := serve(t, e.src.ServerTLSConfig())
	for _, client := range []*x509svid.SVID{
		e.harbor.svid(t, "/paralegal/alice", nil),
		e.manila.svid(t, "/site/review-team", nil),
	} {
		line, err := dial(t, addr, ClientTLSConfig(client, e.clientBundles, e.gatewayID))
		if err != nil {
			t.Fatalf("%s: refused: %v\nlog: %s", client.ID, err, e.log)
		}
		got := receive(t, results)
		if got.err != nil || got.id != client.ID || line != client.ID.String() {
			t.Errorf("server saw %v, %v; client got %q; want %v", got.id, got.err, line, client.ID)
		}
	}
	if e.log.Len() != 0 {
		t.Errorf("accepted handshakes were logged as refused: %s", e.log)
	}
}

func TestServerRefuses(t *testing.T) {
	e := newTestEnv(t)
	addr, results := serve(t, e.src.ServerTLSConfig())
	evil := newTestCA(t, "evil.example")
	rogue := newTestCA(t, "harbor-law.example") // another CA claiming a known trust domain
	now := time.Now()
	spiffeClient := func(svid *x509svid.SVID) *tls.Config {
		return ClientTLSConfig(svid, e.clientBundles, e.gatewayID)
	}
	noCert := tlsconfig.TLSClientConfig(e.clientBundles, tlsconfig.AuthorizeID(e.gatewayID))
	tls12 := spiffeClient(e.harbor.svid(t, "/paralegal/alice", nil))
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	tests := []struct {
		name   string
		client *tls.Config
		reason string // in the server's error
		logged bool   // and in the log
	}{
		{"no client certificate", noCert, "didn't provide a certificate", false},
		{"unknown trust domain", spiffeClient(evil.svid(t, "/paralegal/alice", nil)), "unknown trust domain", true},
		{"rogue CA of a known trust domain", spiffeClient(rogue.svid(t, "/paralegal/alice", nil)), "could not verify leaf certificate", true},
		{"expired", spiffeClient(e.harbor.svid(t, "/paralegal/alice", func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = now.Add(-2*time.Hour), now.Add(-time.Minute)
		})), "expired or is not yet valid", true},
		{"not yet valid", spiffeClient(e.harbor.svid(t, "/paralegal/alice", func(c *x509.Certificate) {
			c.NotBefore = now.Add(30 * time.Minute)
		})), "expired or is not yet valid", true},
		{"two URI SANs", spiffeClient(e.harbor.svid(t, "/paralegal/alice", func(c *x509.Certificate) {
			c.URIs = append(c.URIs, &url.URL{Scheme: "spiffe", Host: "harbor-law.example", Path: "/gateway"})
		})), "more than one URI SAN", true},
		{"plain TLS certificate", spiffeClient(e.harbor.svid(t, "/paralegal/alice", func(c *x509.Certificate) {
			c.URIs, c.DNSNames = nil, []string{"alice.harbor-law.example"}
		})), "no URI SAN", true},
		{"https URI SAN", spiffeClient(e.harbor.svid(t, "/paralegal/alice", func(c *x509.Certificate) {
			c.URIs = []*url.URL{{Scheme: "https", Host: "harbor-law.example", Path: "/alice"}}
		})), "scheme is missing or invalid", true},
		{"ID with a query", spiffeClient(e.harbor.svid(t, "/paralegal/alice", func(c *x509.Certificate) {
			c.URIs[0].RawQuery = "admin=1"
		})), "could not get leaf SPIFFE ID", true},
		{"CA certificate as leaf", spiffeClient(e.harbor.svid(t, "/paralegal/alice", func(c *x509.Certificate) {
			c.IsCA, c.KeyUsage = true, c.KeyUsage|x509.KeyUsageCertSign
		})), "CA flag set to true", true},
		{"revoked", spiffeClient(e.harbor.svid(t, "/paralegal/mallory", nil)), "revoked: " + mallory, true},
		{"TLS 1.2", tls12, "unsupported versions", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.log.Reset()
			line, err := dial(t, addr, tt.client)
			if err == nil {
				t.Fatalf("handshake accepted, server sent %q", line)
			}
			got := receive(t, results)
			if got.err == nil || !strings.Contains(got.err.Error(), tt.reason) {
				t.Errorf("server error = %v, want one containing %q", got.err, tt.reason)
			}
			if tt.logged && (!strings.Contains(e.log.String(), "refused TLS handshake") || !strings.Contains(e.log.String(), tt.reason)) {
				t.Errorf("refusal not logged with its reason; log: %s", e.log)
			}
		})
	}
}

func TestRevokedIsErrRevoked(t *testing.T) {
	e := newTestEnv(t)
	addr, results := serve(t, e.src.ServerTLSConfig())
	dial(t, addr, ClientTLSConfig(e.harbor.svid(t, "/paralegal/mallory", nil), e.clientBundles, e.gatewayID))
	if got := receive(t, results); !errors.Is(got.err, ErrRevoked) {
		t.Errorf("server error = %v, want ErrRevoked", got.err)
	}
	if !e.src.IsRevoked(spiffeid.RequireFromString(mallory)) || e.src.IsRevoked(e.gatewayID) {
		t.Error("IsRevoked is wrong")
	}
}

func TestClientRefusesWrongServer(t *testing.T) {
	e := newTestEnv(t)
	addr, results := serve(t, e.src.ServerTLSConfig())
	alice := e.harbor.svid(t, "/paralegal/alice", nil)
	other := spiffeid.RequireFromString("spiffe://harbor-law.example/not-the-gateway")
	if _, err := dial(t, addr, ClientTLSConfig(alice, e.clientBundles, other)); err == nil || !strings.Contains(err.Error(), "unexpected ID") {
		t.Errorf("client accepted the wrong server: %v", err)
	}
	if got := receive(t, results); got.err == nil {
		t.Error("server saw a completed handshake")
	}
}

func TestServerTLSConfig(t *testing.T) {
	e := newTestEnv(t)
	cfg := e.src.ServerTLSConfig()
	if cfg.MinVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.RequireAnyClientCert || len(cfg.NextProtos) != 0 {
		t.Errorf("MinVersion %x, ClientAuth %v, NextProtos %v", cfg.MinVersion, cfg.ClientAuth, cfg.NextProtos)
	}
	if e.src.ID() != e.gatewayID {
		t.Errorf("ID = %v", e.src.ID())
	}
	var tds []string
	for _, td := range e.src.TrustDomains() {
		tds = append(tds, td.Name())
	}
	if strings.Join(tds, ",") != "harbor-law.example,manila-lpo.example" {
		t.Errorf("TrustDomains = %v", tds)
	}
}

func TestClosedSourceRefusesHandshakes(t *testing.T) {
	e := newTestEnv(t)
	addr, results := serve(t, e.src.ServerTLSConfig())
	if err := e.src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.src.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := e.src.GetX509SVID(); !errors.Is(err, ErrClosed) {
		t.Errorf("GetX509SVID after Close: %v", err)
	}
	if _, err := dial(t, addr, ClientTLSConfig(e.harbor.svid(t, "/paralegal/alice", nil), e.clientBundles, e.gatewayID)); err == nil {
		t.Error("handshake accepted after Close")
	}
	receive(t, results)
}

func TestPeerIDWithoutCertificate(t *testing.T) {
	for _, cs := range []*tls.ConnectionState{nil, {}, {HandshakeComplete: true}} {
		if _, err := PeerID(cs); !errors.Is(err, ErrNoPeerCertificate) {
			t.Errorf("PeerID(%v) error = %v", cs, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
