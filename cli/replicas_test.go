package cli_test

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// withGateways rewrites config's gateway line to addrs.
func withGateways(t *testing.T, config string, addrs ...string) {
	t.Helper()
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "gateway: ") {
			l = "gateway: " + strings.Join(addrs, ",")
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(config, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestSeveralGateways: with several gateway addresses, lex skips one that
// does not answer and works through the next, over QUIC and over TCP.
func TestSeveralGateways(t *testing.T) {
	env, alice, team := setup(t)
	dead := deadAddr(t)
	withGateways(t, alice, dead, env.Addr)
	withGateways(t, team, dead, env.Addr)
	for _, transport := range []string{"auto", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			code, out, errOut := lex(t, alice, "-v", "--transport", transport, "send",
				"--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
			if code != 0 {
				t.Fatalf("send: exit %d\n%s%s", code, out, errOut)
			}
			if !strings.Contains(errOut, "gateway "+dead+" unreachable") {
				t.Errorf("stderr does not say the first gateway was skipped:\n%s", errOut)
			}
			if inbox := mustLex(t, team, "--transport", transport, "inbox"); !strings.Contains(inbox, "HL-2025-001") {
				t.Errorf("inbox through the second address:\n%s", inbox)
			}
		})
	}
	withGateways(t, alice, dead)
	if code, _, errOut := lex(t, alice, "--transport", "tcp", "inbox"); code == 0 {
		t.Errorf("inbox with no gateway answering succeeded:\n%s", errOut)
	}
}
