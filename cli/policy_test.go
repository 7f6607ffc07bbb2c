package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"
)

// The local policy tools need no gateway and no configuration.
const noConfig = "/nonexistent/lex.yaml"

func TestPolicyTestCommand(t *testing.T) {
	code, out, errOut := lex(t, noConfig, "policy", "test", filepath.Join("..", "policies"))
	if code != cli.ExitOK || !strings.Contains(out, "PASS: ") || strings.Contains(out, "FAIL") || !strings.Contains(out, "coverage: ") ||
		!strings.Contains(out, filepath.Join("..", "policies", "gdpr.rego")) {
		t.Errorf("exit %d\nstdout:\n%s\nstderr: %s", code, out, errOut)
	}
	// A failing test fails the command and is named with its file and line.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package lexgate\n\ndecision := {\"allow\": true}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "p_test.rego"), []byte("package lexgate_test\n\ntest_refuses if not data.lexgate.decision.allow\n"), 0o644)
	code, out, _ = lex(t, noConfig, "policy", "test", "--json", dir)
	var rep struct {
		Results []struct {
			Name string
			Line int
			Pass bool
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != cli.ExitError || len(rep.Results) != 1 || rep.Results[0].Pass || rep.Results[0].Line != 3 {
		t.Errorf("exit %d, %+v, %v\n%s", code, rep, err, out)
	}
}

func TestPolicyCheckCommand(t *testing.T) {
	if code, out, errOut := lex(t, noConfig, "policy", "check", filepath.Join("..", "policies")); code != cli.ExitOK || !strings.Contains(out, ": ok (") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.rego"), []byte("package lexgate\n\ndecision := {\"allow\": input.x ==}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.rego"), []byte("package lexgate\n\nallow if http.send({})\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "data", "organisations.json"), []byte("{\"organisations\": {\n  \"a.test\": {\"name\": \"A\", \"jurisdiction\": \"Deutschland\"}\n}}\n"), 0o644)
	code, out, _ := lex(t, noConfig, "policy", "check", dir)
	for _, want := range []string{
		filepath.Join(dir, "a.rego") + ":3: rego_parse_error",
		filepath.Join(dir, "b.rego") + ":3: rego_type_error: builtin http.send is not allowed",
		filepath.Join(dir, "data", "organisations.json") + ":2: organisations[\"a.test\"]: jurisdiction \"Deutschland\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if code != cli.ExitError {
		t.Errorf("exit %d", code)
	}
}

func TestPolicyExplainLocal(t *testing.T) {
	args := []string{"policy", "explain", "--local", filepath.Join("..", "policies"), "--json", "--at", "2026-06-01",
		"--from", "spiffe://harbor-law.example/paralegal/alice", "--to", "spiffe://manila-lpo.example/site/review-team",
		"--to", "spiffe://bogota-lpo.example/site/x", "--label", "privileged", "--matter", "HL-2026-0050"}
	code, out, errOut := lex(t, noConfig, args...)
	var r api.ExplainResponse
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != cli.ExitRefused || r.Allow || len(r.Reasons) < 2 {
		t.Fatalf("exit %d, %+v, %v, stderr %s", code, r, err, errOut)
	}
	for _, rs := range r.Reasons {
		if !strings.Contains(rs.Message, "bogota") {
			t.Errorf("reason about the wrong recipient: %+v", rs)
		}
	}
	if code, _, errOut := lex(t, noConfig, "policy", "explain", "--local", ".", "--from", "x"); code != cli.ExitError && code != cli.ExitUsage {
		t.Errorf("bad --from: exit %d %s", code, errOut)
	}
	if code, _, _ := lex(t, noConfig, "policy", "frobnicate"); code != cli.ExitUsage {
		t.Errorf("unknown subcommand: exit %d", code)
	}
}
