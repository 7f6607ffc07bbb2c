package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"

	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// newTestCAUntil is newTestCA valid until notAfter.
func newTestCAUntil(t testing.TB, td string, notAfter time.Time) *testCA {
	t.Helper()
	ca := &testCA{td: spiffeid.RequireTrustDomainFromString(td), key: newKey(t)}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		URIs: []*url.URL{ca.td.ID().URL()}, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	ca.cert = sign(t, tmpl, tmpl, &ca.key.PublicKey, ca.key)
	return ca
}

// bundleEndpoint is a real SPIFFE bundle endpoint (go-spiffe's federation
// handler over TLS, https_spiffe) whose bundle, server SVID and health the
// test changes.
type bundleEndpoint struct {
	srv    *httptest.Server
	url    string
	td     spiffeid.TrustDomain
	bundle atomic.Pointer[spiffebundle.Bundle]
	svid   atomic.Pointer[x509svid.SVID]
	broken atomic.Bool // answer 500 instead of the bundle
	served atomic.Int64
}

func startBundleEndpoint(t *testing.T, td spiffeid.TrustDomain) *bundleEndpoint {
	e := &bundleEndpoint{td: td}
	h, err := federation.NewHandler(td, endpointSource{e})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.served.Add(1)
		if e.broken.Load() {
			http.Error(w, "bundle store unavailable", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	// Our own TLS listener: httptest's StartTLS would present its own
	// certificate to clients that send no server name.
	e.srv.Listener = tls.NewListener(e.srv.Listener, &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return tlsconfig.GetCertificate(svidSource{e.svid.Load()})(nil)
	}})
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the test's business
	e.srv.Start()
	e.url = "https://" + e.srv.Listener.Addr().String()
	t.Cleanup(e.srv.Close)
	return e
}

type endpointSource struct{ e *bundleEndpoint }

func (s endpointSource) GetBundleForTrustDomain(spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	return s.e.bundle.Load(), nil
}

type svidSource struct{ s *x509svid.SVID }

func (s svidSource) GetX509SVID() (*x509svid.SVID, error) { return s.s, nil }

// serve makes the endpoint serve the authorities of cas, presenting an SVID
// of signer.
func (e *bundleEndpoint) serve(t *testing.T, signer *testCA, cas ...*testCA) {
	b := spiffebundle.New(e.td)
	for _, ca := range cas {
		b.AddX509Authority(ca.cert)
	}
	b.SetRefreshHint(time.Second)
	e.bundle.Store(b)
	e.svid.Store(signer.svid(t, "/spire/server", nil))
}

// waitServed waits until the endpoint answered n more requests.
func (e *bundleEndpoint) waitServed(t *testing.T, n int64) {
	t.Helper()
	target := e.served.Load() + n
	for deadline := time.Now().Add(time.Minute); e.served.Load() < target; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not fetch the bundle %d more times", n)
		}
	}
}

// TestFederationRefresh: the partner's bundle is fetched from its bundle
// endpoint (https_spiffe, authenticated by the last good bundle) and
// refreshed: a CA rotation (new authority added, then the old one dropped)
// is picked up without restart. A broken endpoint keeps the last good
// bundle; once that bundle's authorities expire, the trust domain fails
// closed with ErrBundleExpired.
func TestFederationRefresh(t *testing.T) {
	dir := t.TempDir()
	own := newTestCA(t, "harbor-law.example")
	partner := spiffeid.RequireTrustDomainFromString("manila-lpo.example")
	ca1 := newTestCA(t, partner.Name())
	ep := startBundleEndpoint(t, partner)
	ep.serve(t, ca1, ca1)
	cert, key := writeSVID(t, dir, "gateway", own.svid(t, "/gateway", nil))
	src, err := New(t.Context(), Config{SVIDCert: cert, SVIDKey: key,
		Bundles: map[string]string{"harbor-law.example": writeBundle(t, dir, own)},
		Federation: []Federation{{TrustDomain: partner.Name(), BundleEndpoint: ep.url,
			EndpointSPIFFEID: "spiffe://manila-lpo.example/spire/server", BootstrapBundle: writeBundle(t, dir, ca1), Refresh: 20 * time.Millisecond}},
		Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	verifies := func(ca *testCA) error {
		_, _, err := x509svid.Verify(ca.svid(t, "/site/review-team", nil).Certificates, src)
		return err
	}
	if err := verifies(ca1); err != nil {
		t.Fatalf("bootstrap bundle: %v", err)
	}
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	// CA rotation: the next CA is published beside the current one, then
	// the old one is dropped.
	ca2 := newTestCAUntil(t, partner.Name(), time.Now().Add(time.Hour))
	ep.serve(t, ca1, ca1, ca2)
	until("the new CA to be trusted", func() bool { return verifies(ca2) == nil })
	ep.serve(t, ca2, ca2)
	until("the old CA to be dropped", func() bool { return verifies(ca1) != nil })

	// A short-lived CA, then the endpoint breaks: the last good bundle stays.
	ca3 := newTestCAUntil(t, partner.Name(), time.Now().Add(12*time.Second)) // outlives the steps below on a slow machine
	ep.serve(t, ca2, ca2, ca3)
	until("the short-lived CA to be trusted", func() bool { return verifies(ca3) == nil })
	ep.serve(t, ca3, ca3)
	until("the bundle to hold only the short-lived CA", func() bool { return verifies(ca2) != nil })
	ep.broken.Store(true)
	ep.waitServed(t, 2)
	if err := verifies(ca3); err != nil {
		t.Fatalf("with the endpoint broken, the last good bundle was dropped: %v", err)
	}
	if e := src.fed.byTD[partner].lastErr.Load(); e == nil {
		t.Error("the failed fetches are not recorded")
	}
	// It expires: fail closed.
	<-time.After(time.Until(ca3.cert.NotAfter) + 100*time.Millisecond)
	_, err = src.GetX509BundleForTrustDomain(partner)
	if !errors.Is(err, ErrBundleExpired) {
		t.Fatalf("expired federated bundle: %v, want ErrBundleExpired", err)
	}
	if err := verifies(ca3); err == nil {
		t.Fatal("an SVID of the expired partner CA still verifies")
	}
}

// TestFederationConfigErrors: each bad federation entry is named.
func TestFederationConfigErrors(t *testing.T) {
	ok := Federation{TrustDomain: "manila-lpo.example", BundleEndpoint: "https://127.0.0.1:8443",
		EndpointSPIFFEID: "spiffe://manila-lpo.example/spire/server", BootstrapBundle: "b.pem"}
	for _, tc := range []struct {
		name string
		edit func(*Federation)
		want string
	}{
		{"bad trust domain", func(f *Federation) { f.TrustDomain = "Bad Domain" }, "trust_domain"},
		{"http url", func(f *Federation) { f.BundleEndpoint = "http://127.0.0.1:8443" }, "bundle_endpoint_url"},
		{"no endpoint id", func(f *Federation) { f.EndpointSPIFFEID = "" }, "endpoint_spiffe_id"},
		{"no bootstrap", func(f *Federation) { f.BootstrapBundle = "" }, "bootstrap_bundle"},
		{"negative refresh", func(f *Federation) { f.Refresh = -time.Second }, "refresh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ok
			tc.edit(&f)
			_, err := checkFederation([]Federation{f}, nil)
			if err == nil || !containsAll(err.Error(), "federation[0]", tc.want) {
				t.Fatalf("error %v, want one naming federation[0] and %s", err, tc.want)
			}
		})
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
