package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// These tests run lex against a whole gateway (gatewaytest.Start): real listeners,
// the dev PKI, the embedded policies and a store in a temporary directory.

func lex(t *testing.T, config string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), append([]string{"--config", config}, args...), nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustLex(t *testing.T, config string, args ...string) string {
	t.Helper()
	code, out, errOut := lex(t, config, args...)
	if code != 0 {
		t.Fatalf("lex %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// setup starts a gateway and gives alice and the review team registered keys.
func setup(t *testing.T, opts ...gatewaytest.Option) (env *gatewaytest.Env, alice, team string) {
	env = gatewaytest.Start(t, opts...)
	alice, team = env.ClientConfig(gatewaytest.Alice), env.ClientConfig(gatewaytest.Team)
	for _, c := range []string{alice, team} {
		mustLex(t, c, "keygen")
		mustLex(t, c, "register")
	}
	return env, alice, team
}

func caseFolder(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "HL-2025-001")
	os.MkdirAll(filepath.Join(dir, "depositions"), 0o755)
	os.WriteFile(filepath.Join(dir, "depositions", "smith.txt"), bytes.Repeat([]byte("Q. Where were you? A. At home.\n"), 4000), 0o644)
	os.WriteFile(filepath.Join(dir, "index.txt"), []byte("index\n"), 0o644)
	return dir
}

func TestGatewaySendReceive(t *testing.T) {
	for _, tc := range []struct {
		name, transport, want string
		opts                  []gatewaytest.Option
	}{
		{"quic", "auto", "transport: quic (HTTP/3)", nil},
		{"tcp", "tcp", "transport: tcp (HTTP/2)", nil},
		{"udp blocked", "auto", "QUIC failed", []gatewaytest.Option{gatewaytest.WithoutQUIC()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts == nil { // auto mode must pick QUIC, however slow its handshake
				defer cli.SetQUICTimeout(time.Minute)()
			}
			_, alice, team := setup(t, tc.opts...)
			folder := caseFolder(t)
			code, out, errOut := lex(t, alice, "-v", "--transport", tc.transport, "send", "--json",
				"--to", gatewaytest.Team, "--matter", "HL-2025-001", "--label", "privileged", "--chunk", "1MiB", folder)
			if code != 0 {
				t.Fatalf("send: exit %d\n%s", code, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q lacks %q", errOut, tc.want)
			}
			var sent struct{ ID string }
			if err := json.Unmarshal([]byte(out), &sent); err != nil || sent.ID == "" {
				t.Fatalf("send printed %q: %v", out, err)
			}
			if inbox := mustLex(t, team, "inbox"); !strings.Contains(inbox, sent.ID) {
				t.Errorf("inbox lacks %s:\n%s", sent.ID, inbox)
			}
			dest := filepath.Join(t.TempDir(), "received")
			out = mustLex(t, team, "--transport", tc.transport, "receive", sent.ID, "-o", dest, "--ack")
			if !strings.Contains(out, "from "+gatewaytest.Alice+" (signature verified)") {
				t.Errorf("receive printed %q", out)
			}
			for _, rel := range []string{"depositions/smith.txt", "index.txt"} {
				want, _ := os.ReadFile(filepath.Join(folder, rel))
				got, err := os.ReadFile(filepath.Join(dest, "HL-2025-001", rel))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %v (equal %v)", rel, err, bytes.Equal(got, want))
				}
			}
			if inbox := mustLex(t, team, "inbox"); strings.Contains(inbox, sent.ID) {
				t.Errorf("acknowledged transfer still in the inbox:\n%s", inbox)
			}
		})
	}
}

func TestGatewayRefusal(t *testing.T) {
	env, alice, _ := setup(t)
	code, _, errOut := lex(t, alice, "send", "--to", gatewaytest.Team, "--matter", "HL-2025-002", "--label", "health", caseFolder(t))
	if code != cli.ExitRefused {
		t.Fatalf("exit %d, want %d\n%s", code, cli.ExitRefused, errOut)
	}
	if !strings.Contains(errOut, "refused by policy:") || !strings.Contains(errOut, "[hipaa.no_baa]") {
		t.Errorf("stderr %q", errOut)
	}
	if files := env.SpoolFiles(); len(files) > 0 {
		t.Errorf("gateway stored %v for a refused transfer", files)
	}
}

func TestGatewayUnregisteredRecipient(t *testing.T) {
	env := gatewaytest.Start(t)
	alice := env.ClientConfig(gatewaytest.Alice)
	mustLex(t, alice, "keygen")
	mustLex(t, alice, "register")
	code, _, errOut := lex(t, alice, "send", "--to", gatewaytest.Team, "--matter", "M", caseFolder(t))
	if code != cli.ExitError || !strings.Contains(errOut, "no registered age key") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
