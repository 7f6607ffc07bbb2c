package cli_test

import (
	"bytes"
	"encoding/json"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// viaProxy writes a copy of a lex config that reaches the gateway through addr.
func viaProxy(t *testing.T, config, gatewayAddr, addr string) string {
	t.Helper()
	cfg, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(config), "via-proxy.yaml")
	write(t, p, bytes.Replace(cfg, []byte("gateway: "+gatewayAddr), []byte("gateway: "+addr), 1))
	return p
}

// TestGatewayStreamBreaksOnce: the link drops once in the middle of a streamed
// send; lex finishes encrypting into its spool, resumes the upload from the
// gateway's offset and seals the transfer, all in the same run.
func TestGatewayStreamBreaksOnce(t *testing.T) {
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 24<<20)
	seed := time.Now().UnixNano()
	cutAt := int64(2<<20) + mrand.New(mrand.NewPCG(uint64(seed), 0)).Int64N(20<<20)
	t.Logf("cutting the link once after %d bytes (seed %d)", cutAt, seed)
	proxy := startCutProxy(t, env.Addr, cutAt)
	proxy.healOnCut.Store(true)
	cfg := viaProxy(t, alice, env.Addr, proxy.addr())

	code, out, errOut := lex(t, cfg, "-v", "--transport", "tcp", "send", "--json", "--to", gatewaytest.Team,
		"--matter", "HL-2026-0042", "--chunk", "4MiB", root)
	if code != 0 || !strings.Contains(errOut, "resuming from the spool") {
		t.Fatalf("send over a link that drops once: exit %d\nstderr: %s", code, errOut)
	}
	var res struct{ ID string }
	json.Unmarshal([]byte(out), &res)
	arrivesWhole(t, env, team, res.ID, sums)
}

// TestGatewayResumeUnfinishedEncryption: a send interrupted before its
// encryption finished (its state has no final manifest) cannot resume the
// ciphertext it was uploading: age chose a random file key that is gone. The
// next run cancels the half-uploaded transfer at the gateway and sends afresh.
func TestGatewayResumeUnfinishedEncryption(t *testing.T) {
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 12<<20)
	proxy := startCutProxy(t, env.Addr, 4<<20)
	cfg := viaProxy(t, alice, env.Addr, proxy.addr())
	args := []string{"-v", "--transport", "tcp", "--reconnect", "1s", "send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2026-0042", "--chunk", "1MiB", root}
	if code, _, errOut := lex(t, cfg, args...); code == 0 {
		t.Fatalf("send over a cut link succeeded:\n%s", errOut)
	}
	waitUntil(t, func() bool { s := env.StoreStats(); return s.Transfers == 1 && s.Uploading == 1 }, "a partial upload")
	// What a crash in the middle of encrypting leaves: the state without its
	// final manifest (lex saves that only once encryption is complete).
	states, _ := filepath.Glob(filepath.Join(filepath.Dir(alice), "*", "outgoing", "*.json"))
	if len(states) != 1 {
		t.Fatalf("send states: %q", states)
	}
	var st map[string]any
	data, _ := os.ReadFile(states[0])
	json.Unmarshal(data, &st)
	if st["final"] == nil || st["transfer_id"] == nil {
		t.Fatalf("state after a cut upload: %s", data)
	}
	delete(st, "final")
	data, _ = json.Marshal(st)
	write(t, states[0], data)

	proxy.heal()
	code, out, errOut := lex(t, cfg, args...)
	if code != 0 || !strings.Contains(errOut, "had not finished encrypting") || !strings.Contains(errOut, "cancelled the abandoned transfer") {
		t.Fatalf("second send: exit %d\nstderr: %s", code, errOut)
	}
	var res struct{ ID string }
	json.Unmarshal([]byte(out), &res)
	if s := env.StoreStats(); s.Transfers != 1 || s.Ready != 1 {
		t.Fatalf("store %+v: want only the new, ready transfer", s)
	}
	dest := t.TempDir()
	mustLex(t, team, "receive", res.ID, "-o", dest)
	checkTree(t, filepath.Join(dest, "HL-2026-0042"), sums)
}
