package gateway_test

import (
	"crypto/tls"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/policies"
)

// mintGatewaySVID writes a new gateway SVID valid from nb to na over the
// files the gateway loads, and returns it.
func mintGatewaySVID(t *testing.T, certPath, keyPath string, nb, na time.Time) *x509svid.SVID {
	t.Helper()
	ca, err := certs.LoadCA(filepath.Dir(certPath))
	if err != nil {
		t.Fatal(err)
	}
	svid, err := ca.MintSVID(spiffeid.RequireFromString(gatewaytest.GatewayID), certs.SVIDOptions{NotBefore: nb, NotAfter: na})
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteSVID(certPath, keyPath, svid); err != nil {
		t.Fatal(err)
	}
	return svid
}

// servedSerial opens a new TLS connection to the gateway and returns the
// serial number of the certificate it presented.
func servedSerial(t *testing.T, env *gatewaytest.Env) *big.Int {
	t.Helper()
	conn, err := tls.Dial("tcp", env.Addr, env.TLSConfig(env.LoadSVID(gatewaytest.Alice)))
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// until polls cond every 20 ms until it holds, for at most a minute (a
// generous bound: only a broken gateway takes it).
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestFileSVIDReloaded: a gateway SVID replaced on disk is used by new
// handshakes without a restart, noticed by the watch and by SIGHUP; a
// connection opened before keeps working; a replacement that does not load
// (another SPIFFE ID) leaves the loaded SVID serving.
func TestFileSVIDReloaded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		watch  time.Duration
		reload func(t *testing.T)
	}{
		{"watch", 20 * time.Millisecond, func(*testing.T) {}},
		{"SIGHUP", -1, func(t *testing.T) {
			// Our own Notify keeps the test process alive should the
			// gateway's handler not be registered yet.
			c := make(chan os.Signal, 1)
			signal.Notify(c, syscall.SIGHUP)
			t.Cleanup(func() { signal.Stop(c) })
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := gatewaytest.Start(t, gatewaytest.WithoutQUIC(), gatewaytest.WithConfig(func(c *gateway.Config) {
				c.Identity.WatchInterval = tc.watch
			}))
			before := servedSerial(t, env)
			alice := newAPIClient(t, env, gatewaytest.Alice, false)
			if st, _ := alice.json(http.MethodGet, "/v1/inbox", nil); st != http.StatusOK {
				t.Fatalf("inbox: %d", st)
			}
			now := time.Now()
			renewed := mintGatewaySVID(t, env.Config.Identity.SVIDCert, env.Config.Identity.SVIDKey, now.Add(-time.Minute), now.Add(time.Hour))
			tc.reload(t)
			until(t, "new handshakes to present the renewed SVID", func() bool {
				return servedSerial(t, env).Cmp(renewed.Certificates[0].SerialNumber) == 0
			})
			if renewed.Certificates[0].SerialNumber.Cmp(before) == 0 {
				t.Fatal("the renewed SVID has the old serial")
			}
			if st, _ := alice.json(http.MethodGet, "/v1/inbox", nil); st != http.StatusOK {
				t.Fatalf("inbox after the reload: %d", st)
			}
		})
	}
}

// TestReloadRefusesOtherID: files holding another SPIFFE ID are refused, and
// the loaded SVID keeps serving.
func TestReloadRefusesOtherID(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC(), gatewaytest.WithConfig(func(c *gateway.Config) {
		c.Identity.WatchInterval = -1
	}))
	before := servedSerial(t, env)
	ca, err := certs.LoadCA(filepath.Dir(env.Config.Identity.SVIDCert))
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.MintSVID(spiffeid.RequireFromString("spiffe://harbor-law.example/impostor"), certs.SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteSVID(env.Config.Identity.SVIDCert, env.Config.Identity.SVIDKey, other); err != nil {
		t.Fatal(err)
	}
	if err := env.Gateway.ReloadIdentity(); err == nil || !strings.Contains(err.Error(), "clients pin that ID") {
		t.Fatalf("reload of another ID: %v", err)
	}
	if got := servedSerial(t, env); got.Cmp(before) != 0 {
		t.Fatalf("serving serial %s, want the loaded %s", got, before)
	}
}

// adminGet fetches path from the admin listener.
func adminGet(t *testing.T, env *gatewaytest.Env, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + env.Gateway.AdminAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyzSVID: /readyz fails, naming the SVID, once the gateway's SVID
// expired (while /healthz stays ok), the remaining-lifetime metric goes
// negative, and both recover when a renewed SVID is loaded.
func TestReadyzSVID(t *testing.T) {
	var notAfter time.Time
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC(), gatewaytest.WithConfig(func(c *gateway.Config) {
		c.Identity.WatchInterval = -1
		now := time.Now()
		notAfter = mintGatewaySVID(t, c.Identity.SVIDCert, c.Identity.SVIDKey, now.Add(-time.Second), now.Add(3*time.Second)).Certificates[0].NotAfter
	}))
	<-time.After(time.Until(notAfter) + 100*time.Millisecond) // the gateway's SVID expires
	st, body := adminGet(t, env, "/readyz")
	if st != http.StatusServiceUnavailable || !strings.Contains(body, "svid: the gateway's SVID "+gatewaytest.GatewayID+" expired at") {
		t.Fatalf("/readyz with an expired SVID: %d %q", st, body)
	}
	if st, body := adminGet(t, env, "/healthz"); st != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q, want a liveness ok", st, body)
	}
	if _, m := adminGet(t, env, "/metrics"); !strings.Contains(m, "lexgate_svid_remaining_seconds -") {
		t.Errorf("/metrics lacks a negative lexgate_svid_remaining_seconds:\n%s", grepLines(m, "lexgate_svid"))
	}
	now := time.Now()
	mintGatewaySVID(t, env.Config.Identity.SVIDCert, env.Config.Identity.SVIDKey, now.Add(-time.Minute), now.Add(time.Hour))
	if err := env.Gateway.ReloadIdentity(); err != nil {
		t.Fatal(err)
	}
	if st, body := adminGet(t, env, "/readyz"); st != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz after renewal: %d %q", st, body)
	}
	if _, m := adminGet(t, env, "/metrics"); !strings.Contains(m, "lexgate_svid_remaining_seconds 3") { // ~3599 s
		t.Errorf("/metrics after renewal:\n%s", grepLines(m, "lexgate_svid"))
	}
}

// TestReadyzPolicy: with no policy set loaded (every file rejected) /readyz
// fails naming the policy, and recovers when a good set loads.
func TestReadyzPolicy(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, policies.FS); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "zz_broken.rego")
	if err := os.WriteFile(broken, []byte("package lexgate\n\ndecision := {\"allow\": true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC(), gatewaytest.WithPolicyDir(dir), gatewaytest.WithConfig(func(c *gateway.Config) {
		c.Policy.WatchInterval = -1
	}))
	st, body := adminGet(t, env, "/readyz")
	if st != http.StatusServiceUnavailable || !strings.Contains(body, "policy: no policy set is loaded") || strings.Contains(body, "svid:") {
		t.Fatalf("/readyz without a policy: %d %q", st, body)
	}
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	if err := env.Gateway.ReloadPolicy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, body := adminGet(t, env, "/readyz"); st != http.StatusOK {
		t.Fatalf("/readyz with a policy: %d %q", st, body)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestReadyzStoreAndAudit: /readyz fails, naming it, while the store's or the
// audit log's directory cannot be written (here: moved away, as an unmounted
// volume would be), and recovers when it is back.
func TestReadyzStoreAndAudit(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	for _, tc := range []struct{ what, dir string }{
		{"store", env.Config.Store.Dir},
		{"audit", env.Gateway.AuditDir()},
	} {
		t.Run(tc.what, func(t *testing.T) {
			if err := os.Rename(tc.dir, tc.dir+".away"); err != nil {
				t.Fatal(err)
			}
			st, body := adminGet(t, env, "/readyz")
			if err := os.Rename(tc.dir+".away", tc.dir); err != nil {
				t.Fatal(err)
			}
			if st != http.StatusServiceUnavailable || !strings.Contains(body, tc.what+": "+tc.dir+" is not writable") {
				t.Fatalf("/readyz without the %s directory: %d %q", tc.what, st, body)
			}
			if st, body := adminGet(t, env, "/readyz"); st != http.StatusOK {
				t.Fatalf("/readyz with the %s directory back: %d %q", tc.what, st, body)
			}
		})
	}
}
