package gateway_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestAdminEndpoints: /healthz answers and /metrics counts API requests by route,
// on the loopback admin listener, which needs no client certificate.
func TestAdminEndpoints(t *testing.T) {
	env := gatewaytest.Start(t)
	team := newAPIClient(t, env, gatewaytest.Team, true)
	team.json(http.MethodGet, api.PathInbox, nil)

	get := func(path string) string {
		resp, err := http.Get("http://" + env.Gateway.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	if got := get("/healthz"); got != "ok\n" {
		t.Errorf("/healthz = %q", got)
	}
	// The request is counted when its handler returns, just after the reply.
	var metrics string
	waitFor(t, func() bool {
		metrics = get("/metrics")
		return strings.Contains(metrics, "lexgate_requests_total")
	}, "the request to be counted")
	for _, want := range []string{`lexgate_requests_total{code="200",route="GET /v1/inbox"} 1`, "lexgate_upload_bytes_total", "go_goroutines"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.HasPrefix(env.Gateway.AdminAddr(), "127.0.0.1:") {
		t.Errorf("admin listens on %s", env.Gateway.AdminAddr())
	}
}

// TestLoadConfig: the YAML config resolves relative paths against its own
// directory, fills defaults, and names what is wrong.
func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "lexgate.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := gateway.LoadConfig(write("identity:\n  svid_cert: pki/gw.crt\n  bundles:\n    harbor-law.example: pki/b.pem\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Identity.SVIDCert != filepath.Join(dir, "pki/gw.crt") || cfg.Identity.Bundles["harbor-law.example"] != filepath.Join(dir, "pki/b.pem") {
		t.Errorf("paths not resolved against the config's directory: %+v", cfg.Identity)
	}
	if cfg.Listen != "127.0.0.1:8443" || cfg.Admin != "127.0.0.1:9443" || cfg.Store.Dir != filepath.Join(dir, "lexgate-data") {
		t.Errorf("defaults: listen %s admin %s store %s", cfg.Listen, cfg.Admin, cfg.Store.Dir)
	}
	if cfg.GC.MinHeap() != 64<<20 {
		t.Errorf("default heap floor %d bytes, want 64 MiB", cfg.GC.MinHeap())
	}
	if cfg, err := gateway.LoadConfig(write("gc:\n  min_heap_mib: -1\n")); err != nil || cfg.GC.MinHeap() != 0 {
		t.Errorf("gc.min_heap_mib -1: floor %d, %v; want 0 (off)", cfg.GC.MinHeap(), err)
	}
	for _, c := range []struct{ body, want string }{
		{"listn: 1.2.3.4:5\n", `unknown key "listn" (did you mean "listen"?)`},
		{"listen: nowhere\n", "listen:"},
		{"log:\n  format: xml\n", "log.format"},
		{"admin_listen: everywhere\n", "admin_listen"},
		{"shutdown_grace: -1s\n", "shutdown_grace"},
		{"gc:\n  min_heap_mib: -2\n", "gc.min_heap_mib"},
	} {
		if _, err := gateway.LoadConfig(write(c.body)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q: error %v, want %q", c.body, err, c.want)
		}
	}
	if _, err := gateway.LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}
