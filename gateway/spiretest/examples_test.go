package spiretest_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/spiretest"
)

// TestExampleConfigs: the SPIRE configs of examples/spire pass SPIRE's own
// validation, and the lexgate and lex configs there load.
func TestExampleConfigs(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "spire")
	bins := spiretest.Binaries(t)
	for _, c := range []struct{ bin, conf string }{{bins.Server, "server.conf"}, {bins.Agent, "agent.conf"}} {
		if out, err := exec.Command(c.bin, "validate", "-config", filepath.Join(dir, c.conf)).CombinedOutput(); err != nil {
			t.Errorf("%s validate %s: %v\n%s", filepath.Base(c.bin), c.conf, err, out)
		}
	}
	cfg, err := gateway.LoadConfig(filepath.Join(dir, "lexgate.yaml"))
	if err != nil {
		t.Fatalf("lexgate.yaml: %v", err)
	}
	if cfg.Identity.WorkloadAPI == "" || len(cfg.Identity.Federation) != 1 || !filepath.IsAbs(cfg.Identity.Federation[0].BootstrapBundle) {
		t.Errorf("lexgate.yaml identity: %+v", cfg.Identity)
	}
	lc, err := cli.LoadConfig(filepath.Join(dir, "lex.yaml"))
	if err != nil {
		t.Fatalf("lex.yaml: %v", err)
	}
	if lc.WorkloadAPI == "" || lc.SPIFFEID == "" {
		t.Errorf("lex.yaml: %+v", lc)
	}
}
