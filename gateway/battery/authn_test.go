package battery_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestAuthN: a peer without a valid SVID of a known trust domain never completes
// a handshake, over QUIC or TCP: the client gets an error, the gateway logs the
// refusal, no handler runs, and nothing reaches the store or the audit log (a
// refused handshake has no identity to audit); the goroutines the refused
// connections held are gone afterwards and the heap is back to its baseline.
func TestAuthN(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithRevoked(gatewaytest.DMS))
	defer memoryNow(t, env).back(t)
	harbor := loadCA(t, env, "harbor-law.example")
	evil, err := certs.NewCA(spiffeid.RequireTrustDomainFromString("evil.example"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// raw mints an SVID of the harbor CA whose only URI SAN is u, byte for byte.
	raw := func(u *url.URL) *x509svid.SVID { return mint(t, harbor, "", certs.SVIDOptions{URIs: []*url.URL{u}}) }
	parse := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	const alice = gatewaytest.Alice
	rows := []struct {
		name string
		svid *x509svid.SVID // nil: no client certificate
	}{
		{"no client certificate", nil},
		{"unknown trust domain", mint(t, evil, "spiffe://evil.example/paralegal/alice", certs.SVIDOptions{})},
		{"expired SVID", mint(t, harbor, alice, certs.SVIDOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})},
		{"not yet valid SVID", mint(t, harbor, alice, certs.SVIDOptions{NotBefore: time.Now().Add(time.Hour), TTL: time.Hour})},
		{"two URI SANs", mint(t, harbor, alice, certs.SVIDOptions{ExtraURIs: []string{"spiffe://harbor-law.example/admin"}})},
		{"no URI SAN", mint(t, harbor, "", certs.SVIDOptions{NoURI: true, DNSNames: []string{"alice.harbor-law.example"}})},
		{"CA certificate as leaf", mint(t, harbor, alice, certs.SVIDOptions{IsCA: true})},
		{"revoked identity", env.LoadSVID(gatewaytest.DMS)},
		// SPIFFE ID tricks: each names an identity of a trusted domain in a
		// spelling that is not the canonical one.
		{"dot-dot segment", raw(parse("spiffe://harbor-law.example/paralegal/../admin"))},
		{"encoded dot-dot", raw(&url.URL{Scheme: "spiffe", Host: "harbor-law.example", Path: "/paralegal/../admin", RawPath: "/paralegal/%2e%2e/admin"})},
		{"double slash", raw(parse("spiffe://harbor-law.example//paralegal/alice"))},
		{"trailing slash", raw(parse("spiffe://harbor-law.example/paralegal/alice/"))},
		{"uppercase scheme", raw(&url.URL{Scheme: "SPIFFE", Host: "harbor-law.example", Path: "/paralegal/alice"})},
		{"uppercase trust domain", raw(parse("spiffe://HARBOR-LAW.example/paralegal/alice"))},
		{"userinfo", raw(parse("spiffe://alice@harbor-law.example/paralegal/alice"))},
		{"port", raw(parse("spiffe://harbor-law.example:8443/paralegal/alice"))},
		{"query", raw(parse("spiffe://harbor-law.example/paralegal/alice?admin=1"))},
		{"fragment", raw(parse("spiffe://harbor-law.example/paralegal/alice#admin"))},
	}
	before := snapshot(env)
	for _, tr := range transports {
		for _, row := range rows {
			t.Run(tr.name+"/"+row.name, func(t *testing.T) {
				from := lines(env.Logs())
				cl := gatewaytest.HTTPClient(t, env.TLSConfig(row.svid), tr.quic)
				resp, err := cl.Get("https://" + env.Addr + api.PathInbox)
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d; want a refused handshake", resp.StatusCode)
				}
				// In TLS 1.3 the client learns of a refused certificate only at its
				// first read or write after the handshake: an alert, or a closed pipe.
				if !containsAny(err.Error(), "tls", "CRYPTO_ERROR", "certificate", "broken pipe", "connection reset", "EOF", "could not be established") {
					t.Errorf("client error does not say the handshake failed: %v", err)
				}
				waitFor(t, func() bool {
					l := tail(env.Logs(), from)
					return strings.Contains(l, "refused TLS handshake") || strings.Contains(l, "TLS handshake error")
				}, "a log line for the refused handshake")
			})
		}
	}
	if logs := env.Logs(); strings.Contains(logs, `"msg":"request"`) {
		t.Errorf("a handler ran for a refused peer:\n%s", logs)
	}
	before.unchanged(t)
}
