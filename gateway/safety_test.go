package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/identity"
	"github.com/lexgate/lexgate/gateway/store"
)

// devConfig mints a dev PKI in a temporary directory and returns a gateway
// config serving as svid (a SPIFFE ID of the dev PKI) on 127.0.0.1:0.
func devConfig(t *testing.T, svid string) gateway.Config {
	t.Helper()
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if err := certs.MintDev(pki, certs.DefaultDevSpec()); err != nil {
		t.Fatal(err)
	}
	td, path, _ := strings.Cut(strings.TrimPrefix(svid, "spiffe://"), "/")
	base := filepath.Join(pki, td, strings.ReplaceAll(path, "/", "-"))
	bundles := map[string]string{}
	for _, td := range gatewaytest.TrustDomains {
		bundles[td] = filepath.Join(pki, td, "bundle.pem")
	}
	c := gateway.Config{
		Listen:   "127.0.0.1:0",
		Admin:    "127.0.0.1:0",
		Identity: identity.Config{SVIDCert: base + ".crt", SVIDKey: base + ".key", Bundles: bundles},
	}
	c.Store.Dir = filepath.Join(dir, "data")
	if err := os.MkdirAll(c.Store.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return c
}

// startGateway runs gateway.New on cfg and closes what it returns; it returns
// the log it wrote and New's error.
func startGateway(t *testing.T, cfg gateway.Config) (string, error) {
	t.Helper()
	var logs bytes.Buffer
	g, err := gateway.New(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if g != nil {
		g.Close()
	}
	return logs.String(), err
}

// TestRefusesExposedPrivateKeys: lexgate does not start while a private key file
// is readable by group or others, and says which file and the chmod that fixes it.
func TestRefusesExposedPrivateKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		file func(c *gateway.Config) string // the key file to expose, created if missing
		mode os.FileMode
	}{
		{"svid key 0644", func(c *gateway.Config) string { return c.Identity.SVIDKey }, 0o644},
		{"svid key 0640", func(c *gateway.Config) string { return c.Identity.SVIDKey }, 0o640},
		{"audit key", func(c *gateway.Config) string { return filepath.Join(c.Store.Dir, "audit.key") }, 0o644},
		{"audit key elsewhere", func(c *gateway.Config) string {
			c.Audit.KeyFile = filepath.Join(filepath.Dir(c.Store.Dir), "signing.key")
			return c.Audit.KeyFile
		}, 0o604},
		{"sftp host key", func(c *gateway.Config) string { return filepath.Join(c.Store.Dir, "sftp_host_ed25519_key") }, 0o640},
		{"sftp custody", func(c *gateway.Config) string {
			d := filepath.Join(c.Store.Dir, "sftp_custody")
			os.MkdirAll(d, 0o700)
			return filepath.Join(d, "dms.sealed")
		}, 0o644},
		{"s3 secret key", func(c *gateway.Config) string {
			c.Store.Ciphertext = store.CiphertextS3
			c.Store.S3 = store.S3Config{Endpoint: "http://127.0.0.1:1", Bucket: "lexgate", AccessKeyID: "AK",
				SecretKeyFile: filepath.Join(filepath.Dir(c.Store.Dir), "s3.secret")}
			return c.Store.S3.SecretKeyFile
		}, 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := devConfig(t, gatewaytest.GatewayID)
			path := tc.file(&cfg)
			if _, err := os.Stat(path); err != nil {
				if err := os.WriteFile(path, []byte("secret"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := startGateway(t, cfg)
			if err == nil {
				t.Fatalf("gateway started with %s at mode %04o", path, tc.mode)
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "chmod 600 "+path) {
				t.Errorf("error %q does not name %s and the chmod that fixes it", msg, path)
			}
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.name == "sftp custody" || tc.name == "sftp host key" || strings.HasPrefix(tc.name, "audit") || strings.HasPrefix(tc.name, "s3") {
				return // a placeholder file, not a key the gateway can read
			}
			if logs, err := startGateway(t, cfg); err != nil {
				t.Errorf("after chmod 600: %v\n%s", err, logs)
			}
		})
	}
}

// TestAdminListenLoopbackOnly: the plain-HTTP admin listener binds loopback
// only, unless admin_listen_public says otherwise (then a WARN at start).
func TestAdminListenLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
		ok     bool
	}{
		{"127.0.0.1:0", false, true},
		{"[::1]:0", false, true},
		{"localhost:0", false, true},
		{"0.0.0.0:0", false, false},
		{":0", false, false},
		{"[::]:0", false, false},
		{"192.0.2.1:9443", false, false},
		{"gateway.example:9443", false, false},
		{"0.0.0.0:0", true, true},
		{"off", false, true},
	} {
		cfg := devConfig(t, gatewaytest.GatewayID)
		cfg.Admin, cfg.AdminPublic = tc.addr, tc.public
		logs, err := startGateway(t, cfg)
		if tc.ok != (err == nil) {
			t.Errorf("admin_listen %q public=%v: err %v, want ok=%v", tc.addr, tc.public, err, tc.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "admin_listen_public: true") {
			t.Errorf("admin_listen %q: error %q does not name admin_listen_public", tc.addr, err)
		}
		if warned := strings.Contains(logs, "level=WARN") && strings.Contains(logs, "admin_listen_public"); tc.public != warned {
			t.Errorf("admin_listen %q public=%v: WARN logged %v:\n%s", tc.addr, tc.public, warned, logs)
		}
	}
}

// TestRefusesForeignSVID: the gateway does not serve as an identity that is not
// its own: another workload's SVID is refused by default, and accepted only
// when gateway_id (or gateway_ids) names it.
func TestRefusesForeignSVID(t *testing.T) {
	cfg := devConfig(t, gatewaytest.Team)
	_, err := startGateway(t, cfg)
	if err == nil || !strings.Contains(err.Error(), gatewaytest.Team) || !strings.Contains(err.Error(), "spiffe://manila-lpo.example/gateway") {
		t.Fatalf("gateway served as %s by default: %v", gatewaytest.Team, err)
	}
	cfg.GatewayID = gatewaytest.GatewayID
	if _, err := startGateway(t, cfg); err == nil || !strings.Contains(err.Error(), gatewaytest.GatewayID) {
		t.Errorf("gateway_id %s: served as %s: %v", cfg.GatewayID, gatewaytest.Team, err)
	}
	cfg.GatewayIDs = []string{gatewaytest.Team}
	if logs, err := startGateway(t, cfg); err != nil {
		t.Errorf("gateway_ids lists %s, still refused: %v\n%s", gatewaytest.Team, err, logs)
	}
	cfg = devConfig(t, gatewaytest.GatewayID)
	cfg.GatewayID = "not a spiffe id"
	if _, err := startGateway(t, cfg); err == nil || !strings.Contains(err.Error(), "gateway_id") {
		t.Errorf("a bad gateway_id: %v", err)
	}
}

// TestConfigTypoSuggestion: an unknown key is named with its file and line and
// the key it most likely misspells.
func TestConfigTypoSuggestion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lexgate.yaml")
	body := "listen: 127.0.0.1:8443\nstroe:\n  dir: data\nsftp:\n  accounts:\n    - name: dms\n      spiffe_idd: x\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := gateway.LoadConfig(path)
	if err == nil {
		t.Fatal("config with typos loaded")
	}
	for _, want := range []string{
		path + `:2: unknown key "stroe" (did you mean "store"?)`,
		path + `:7: unknown key "sftp.accounts[0].spiffe_idd" (did you mean "sftp.accounts[0].spiffe_id"?)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
}

// TestAdminOverMTLS: with admin_mtls the admin listener serves /metrics only
// over mutual TLS and only to identities the policy lets administer; a plain
// HTTP request, a handshake without an SVID and a paralegal are refused. Such
// a listener may leave loopback.
func TestAdminOverMTLS(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.AdminMTLS = true }))
	addr := env.Gateway.AdminAddr()
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP to an mTLS admin listener got /metrics")
		}
	}
	ca, err := certs.LoadCA(filepath.Join(env.PKI, "harbor-law.example"))
	if err != nil {
		t.Fatal(err)
	}
	bundles, err := certs.LoadBundles(env.Bundles())
	if err != nil {
		t.Fatal(err)
	}
	get := func(id string) (int, string) {
		t.Helper()
		svid, err := ca.MintSVID(spiffeid.RequireFromString(id), certs.SVIDOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tc := tlsconfig.MTLSClientConfig(svid, bundles, tlsconfig.AuthorizeID(spiffeid.RequireFromString(gatewaytest.GatewayID)))
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get("https://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics as %s: %v", id, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("spiffe://harbor-law.example/security/policy-admin"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("the policy administrator: %d %.200s", code, body)
	}
	if code, body := get(gatewaytest.Alice); code != http.StatusForbidden || !strings.Contains(body, "admin.not_admin") {
		t.Errorf("a paralegal: %d %.200s", code, body)
	}
	cfg := devConfig(t, gatewaytest.GatewayID)
	cfg.Admin, cfg.AdminMTLS = "0.0.0.0:9443", true
	if err := cfg.Validate(); err != nil {
		t.Errorf("admin_mtls on a public address: %v", err)
	}
}
