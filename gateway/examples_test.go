package gateway_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway"
)

// TestExampleGatewayConfig loads examples/lexgate.yaml through the real config
// parser, so the example stays valid as keys change, and checks that it is the
// safe production setup it claims to be.
func TestExampleGatewayConfig(t *testing.T) {
	cfg, err := gateway.LoadConfig(filepath.Join("..", "examples", "lexgate.yaml"))
	if err != nil {
		t.Fatalf("examples/lexgate.yaml: %v", err)
	}
	if cfg.Admin != "127.0.0.1:9443" || cfg.AdminPublic {
		t.Errorf("admin_listen %q (public %v): the example keeps it on loopback", cfg.Admin, cfg.AdminPublic)
	}
	if cfg.GatewayID == "" || cfg.Identity.WorkloadAPI == "" || cfg.Policy.Dir == "" || !cfg.SFTP.Enabled() {
		t.Errorf("the example should show gateway_id, the Workload API, a policy dir and the SFTP front: %+v", cfg)
	}
}

// TestExampleSystemdUnit checks examples/lexgate.service: it runs the example
// config as a dedicated user with the hardening the docs promise, and
// systemd-analyze rates its exposure OK (under 2.0 on its 0-10 scale).
func TestExampleSystemdUnit(t *testing.T) {
	unit := filepath.Join("..", "examples", "lexgate.service")
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			set[k] = v
		}
	}
	for k, want := range map[string]string{
		"User": "lexgate", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
		"CapabilityBoundingSet": "", "ReadWritePaths": "/var/lib/lexgate", "ProtectHome": "yes",
		"ExecStart": "/usr/local/bin/lexgate serve --config /etc/lexgate/lexgate.yaml",
	} {
		if got, ok := set[k]; !ok || got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is not installed (make deb-deps installs systemd)")
		}
		t.Skip("systemd-analyze is not installed (make deb-deps installs systemd)")
	}
	out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	}
}
