package cli_test

import (
	"encoding/json"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// sendParallel runs a lex send of root with --streams 4 through config and
// returns the exit code, the transfer ID and stderr.
func sendParallel(t *testing.T, config, root string) (int, string, string) {
	t.Helper()
	// --reconnect 2s: a link down for good is given up soon (a cut one heals at once).
	code, out, errOut := lex(t, config, "-v", "--transport", "tcp", "--reconnect", "2s", "send", "--json", "--streams", "4",
		"--to", gatewaytest.Team, "--matter", "HL-2026-0042", "--chunk", "4MiB", root)
	var res struct{ ID string }
	json.Unmarshal([]byte(out), &res)
	return code, res.ID, errOut
}

// TestGatewayParallelSend: with --streams 4, lex sends the first 256 KiB alone and
// the rest as ranges over four connections, out of order as they finish; the
// gateway reassembles them, the seal's hash check passes, and the recipient
// gets the identical tree.
func TestGatewayParallelSend(t *testing.T) {
	defer cli.SetMinRange(1 << 20)()
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 12<<20)
	code, id, errOut := sendParallel(t, alice, root)
	if code != 0 {
		t.Fatalf("parallel send: exit %d\nstderr: %s", code, errOut)
	}
	for _, want := range []string{"upload: 4 stream(s) (--streams)", "4 parallel ranges", "4 parallel range streams"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	arrivesWhole(t, env, team, id, sums)
}

// TestGatewayParallelSendCut: every connection is cut once in the middle of
// the parallel ranges; each range is retried on its own, sending only what the
// gateway does not hold, and the send completes in the same run.
func TestGatewayParallelSendCut(t *testing.T) {
	defer cli.SetMinRange(1 << 20)()
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 12<<20)
	seed := time.Now().UnixNano()
	cutAt := int64(3<<20) + mrand.New(mrand.NewPCG(uint64(seed), 0)).Int64N(6<<20)
	t.Logf("cutting every connection once after %d bytes (seed %d)", cutAt, seed)
	proxy := startCutProxy(t, env.Addr, cutAt)
	proxy.healOnCut.Store(true)
	code, id, errOut := sendParallel(t, viaProxy(t, alice, env.Addr, proxy.addr()), root)
	if code != 0 || !strings.Contains(errOut, "retrying") {
		t.Fatalf("parallel send over a link cut once: exit %d, want 0 and a retried range\nstderr: %s", code, errOut)
	}
	arrivesWhole(t, env, team, id, sums)
}

// TestGatewayParallelSendResumes: the link goes down for good in the middle of
// the parallel ranges and lex gives up; the next run resumes the send, asks
// the gateway which ranges it holds, and sends only the others.
func TestGatewayParallelSendResumes(t *testing.T) {
	defer cli.SetMinRange(1 << 20)()
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 12<<20)
	proxy := startCutProxy(t, env.Addr, 6<<20)
	cfg := viaProxy(t, alice, env.Addr, proxy.addr())
	if code, _, errOut := sendParallel(t, cfg, root); code == 0 {
		t.Fatalf("a send over a dead link succeeded:\n%s", errOut)
	}
	proxy.heal()
	code, id, errOut := sendParallel(t, cfg, root)
	if code != 0 || !strings.Contains(errOut, "resuming an interrupted send") {
		t.Fatalf("resumed parallel send: exit %d\nstderr: %s", code, errOut)
	}
	if strings.Contains(errOut, "parallel ranges") && strings.Contains(errOut, " left") {
		t.Logf("resumed: %s", line(errOut, "parallel ranges"))
	}
	arrivesWhole(t, env, team, id, sums)
}

// line returns the first line of s containing sub.
func line(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
