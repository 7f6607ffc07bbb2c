package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// jsonFailure is the document lex --json prints on stdout when a command fails.
type jsonFailure struct {
	Status     string `json:"status"`
	Command    string `json:"command"`
	Error      string `json:"error"`
	Code       string `json:"code"`
	DecisionID string `json:"decision_id"`
	Reasons    []struct{ Code, Message string }
	ExitCode   int `json:"exit_code"`
}

// TestJSONOnFailure: with --json (after the command or before it) a refusal
// by policy is a JSON document on stdout with the reasons and the decision id,
// and exit code 3; other failures and usage errors are JSON too.
func TestJSONOnFailure(t *testing.T) {
	env, alice, _ := setup(t)
	folder := caseFolder(t)
	for _, args := range [][]string{
		{"send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2025-002", "--label", "health", folder},
		{"--json", "send", "--to", gatewaytest.Team, "--matter", "HL-2025-002", "--label", "health", folder},
	} {
		code, out, errOut := lex(t, alice, args...)
		var f jsonFailure
		if err := json.Unmarshal([]byte(out), &f); err != nil {
			t.Fatalf("lex %v: stdout %q is not JSON: %v\nstderr: %s", args, out, err, errOut)
		}
		if code != cli.ExitRefused || f.Status != "refused" || f.ExitCode != cli.ExitRefused || f.Command != "send" || f.Code != "denied" || f.DecisionID == "" {
			t.Errorf("lex %v: exit %d, %+v", args, code, f)
		}
		if len(f.Reasons) == 0 || f.Reasons[0].Code != "hipaa.no_baa" || f.Reasons[0].Message == "" {
			t.Errorf("lex %v: reasons %+v, want hipaa.no_baa with its message", args, f.Reasons)
		}
	}
	if files := env.SpoolFiles(); len(files) > 0 {
		t.Errorf("gateway stored %v for a refused transfer", files)
	}
	for _, tc := range []struct {
		args   []string
		status string
		code   int
	}{
		{[]string{"receive", "--json", "no-such-transfer", "-o", t.TempDir()}, "error", cli.ExitError},
		{[]string{"--json", "send", "--to", "not-a-spiffe-id", "--matter", "M", folder}, "usage", cli.ExitUsage},
		{[]string{"--json", "audit", "frobnicate"}, "usage", cli.ExitUsage},
	} {
		code, out, _ := lex(t, alice, tc.args...)
		var f jsonFailure
		if err := json.Unmarshal([]byte(out), &f); err != nil || code != tc.code || f.Status != tc.status || f.Error == "" || !strings.Contains(strings.Join(tc.args, " "), f.Command) {
			t.Errorf("lex %v: exit %d, stdout %q (%v); want %s, exit %d", tc.args, code, out, err, tc.status, tc.code)
		}
	}
}

// TestJSONEveryCommand runs every command that produces a result with --json
// (before the command, as a script would set it once) and checks that stdout
// is JSON: one document, or JSON lines for audit export.
func TestJSONEveryCommand(t *testing.T) {
	_, alice, team := setup(t)
	policies := filepath.Join(moduleRoot(t), "policies")
	receipt := filepath.Join(t.TempDir(), "receipt.json")
	send := mustLex(t, alice, "--json", "send", "--to", gatewaytest.Team, "--matter", "HL-2026-0042", "--receipt", receipt, caseFolder(t))
	var sent struct{ ID string }
	if err := json.Unmarshal([]byte(send), &sent); err != nil || sent.ID == "" {
		t.Fatalf("send --json printed %q (%v)", send, err)
	}
	for _, tc := range []struct {
		config string
		args   []string
		lines  bool // JSON lines rather than one document
	}{
		{alice, []string{"register"}, false},
		{alice, []string{"keys", gatewaytest.Team}, false},
		{team, []string{"inbox"}, false},
		{team, []string{"receive", sent.ID, "-o", t.TempDir()}, false},
		{team, []string{"ack", "--receipt", filepath.Join(t.TempDir(), "ack.json"), sent.ID}, false},
		{alice, []string{"verify", receipt}, false},
		{alice, []string{"audit", "verify"}, false},
		{alice, []string{"audit", "export", "--matter", "HL-2026-0042"}, true},
		{alice, []string{"policy", "check", policies}, false},
		{alice, []string{"policy", "explain", "--local", policies, "--from", gatewaytest.Alice, "--to", gatewaytest.Team, "--matter", "HL-2026-0042"}, false},
		{alice, []string{"keygen", "--force"}, false},
	} {
		out := mustLex(t, tc.config, append([]string{"--json"}, tc.args...)...)
		docs := []string{out}
		if tc.lines {
			docs = strings.Split(strings.TrimSpace(out), "\n")
		}
		for _, d := range docs {
			if !json.Valid([]byte(d)) {
				t.Errorf("lex --json %v printed %q: not JSON", tc.args, out)
			}
		}
	}
}
