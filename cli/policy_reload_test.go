package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// noWatch leaves reloads to the test (ReloadPolicy, SIGHUP).
var noWatch = gatewaytest.WithConfig(func(c *gateway.Config) { c.Policy.WatchInterval = -1 })

// TestPolicyReload: valid → invalid (syntax error) → valid but failing its
// tests → valid again (by SIGHUP). Requests are decided by the last good set
// throughout, and a request the good set refuses is never allowed.
func TestPolicyReload(t *testing.T) {
	dir := policyWorld(t)
	env := gatewaytest.Start(t, gatewaytest.WithPolicyDir(dir), noWatch)
	alice := env.ClientConfig(gatewaytest.Alice)
	v1 := env.Gateway.PolicyVersion()
	refused := []string{"--from", harbor, "--to", bogota, "--at", "2026-04-01"} // the NDA expired on 2026-03-31

	// Ask the refused question over and over while the set changes.
	var allowed, asked atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if code, r, _ := explain(t, alice, refused...); code != cli.ExitRefused || r.Allow {
				allowed.Add(1)
			}
			asked.Add(1)
		}
	}()

	// A syntax error in a file that, if it compiled, would allow everything.
	broken := filepath.Join(dir, "zz_allow.rego")
	os.WriteFile(broken, []byte("package lexgate\n\ndecision := {\"allow\": true\n"), 0o644)
	err := env.Gateway.ReloadPolicy(t.Context())
	if err == nil || !strings.Contains(err.Error(), "zz_allow.rego:") {
		t.Errorf("reload of a syntax error: %v", err)
	}
	checkDecidedBy(t, env, alice, refused, v1)

	// Compiles, but its own tests fail: rejected too.
	os.Remove(broken)
	extendNDA(t, dir)
	os.WriteFile(filepath.Join(dir, "guard_test.rego"), []byte("package lexgate_test\n\ntest_bogota_nda_lapsed if {\n\tnot data.lexgate.decision.allow with input as {\"version\": 1, \"action\": \"send\", \"time\": \"2026-04-01T00:00:00Z\", \"source\": {\"id\": \"spiffe://harbor-law.example/a\", \"trust_domain\": \"harbor-law.example\"}, \"destinations\": [{\"id\": \"spiffe://bogota-lpo.example/b\", \"trust_domain\": \"bogota-lpo.example\"}], \"bundle\": {\"matter\": \"PW-ALL\"}}\n}\n"), 0o644)
	if err := env.Gateway.ReloadPolicy(t.Context()); err == nil || !strings.Contains(err.Error(), "test_bogota_nda_lapsed fails") {
		t.Errorf("reload of a set failing its tests: %v", err)
	}
	checkDecidedBy(t, env, alice, refused, v1)
	close(stop)
	wg.Wait()
	if allowed.Load() > 0 || asked.Load() == 0 {
		t.Fatalf("%d of %d requests refused by the good set were allowed during the reloads", allowed.Load(), asked.Load())
	}
	if !strings.Contains(env.Logs(), "POLICY REJECTED") {
		t.Error("the rejections were not logged loudly")
	}

	// Valid again, reloaded by SIGHUP: the extended NDA now allows the send.
	os.Remove(filepath.Join(dir, "guard_test.rego"))
	waitFor(t, func() bool { return strings.Contains(env.Logs(), "lexgate serving") })
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, func() bool { return env.Gateway.PolicyVersion() != v1 })
	if code, r, errOut := explain(t, alice, refused...); code != cli.ExitOK || !r.Allow || r.PolicyVersion == v1 {
		t.Errorf("after the good reload: exit %d %+v %s", code, r, errOut)
	}
}

// checkDecidedBy checks that the refused question is still refused, by version.
func checkDecidedBy(t *testing.T, env *gatewaytest.Env, config string, refused []string, version string) {
	t.Helper()
	if v := env.Gateway.PolicyVersion(); v != version {
		t.Errorf("policy version %s, want the last good %s", v, version)
	}
	code, r, errOut := explain(t, config, refused...)
	if code != cli.ExitRefused || r.PolicyVersion != version || codesOf(r)[0] != "agreement.not_in_force" {
		t.Errorf("exit %d, decision %+v, stderr %s", code, r, errOut)
	}
}

// extendNDA makes the Harbor–Bogotá NDA run to 2027.
func extendNDA(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, "data", "agreements.json")
	b, _ := os.ReadFile(p)
	s := strings.Replace(string(b), `"signed": "2024-04-01", "expires": "2026-03-31"`, `"signed": "2024-04-01", "expires": "2027-03-31"`, 1)
	if s == string(b) {
		t.Fatal("the Bogotá NDA is not in the policy world")
	}
	os.WriteFile(p, []byte(s), 0o644)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestPolicyStartWithoutValidSet: a gateway whose policy set does not
// compile starts, refuses everything, and serves once a reload brings a
// valid set.
func TestPolicyStartWithoutValidSet(t *testing.T) {
	dir := policyWorld(t)
	broken := filepath.Join(dir, "zz_broken.rego")
	os.WriteFile(broken, []byte("package lexgate\n\nallow if {\n"), 0o644)
	env := gatewaytest.Start(t, gatewaytest.WithPolicyDir(dir), noWatch)
	alice := env.ClientConfig(gatewaytest.Alice)
	if v := env.Gateway.PolicyVersion(); v != "" {
		t.Errorf("policy version %q with no valid set", v)
	}
	code, _, errOut := explain(t, alice, "--from", harbor, "--to", manila)
	if code != cli.ExitRefused || !strings.Contains(errOut, "[policy.error]") {
		t.Errorf("exit %d, stderr %q; want a policy.error refusal", code, errOut)
	}
	if !strings.Contains(env.Logs(), "POLICY REJECTED at start") {
		t.Error("the rejection at start was not logged loudly")
	}
	os.Remove(broken)
	if err := env.Gateway.ReloadPolicy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if code, r, errOut := explain(t, alice, "--from", harbor, "--to", manila, "--at", "2026-03-15"); code != cli.ExitOK || !r.Allow {
		t.Errorf("after a good reload: exit %d %+v %s", code, r, errOut)
	}
}
