package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/api"
)

const (
	aliceID = "spiffe://harbor-law.example/paralegal/alice"
	bobID   = "spiffe://manila-lpo.example/site/review-team"
)

// parties starts a fake gateway and makes alice (sender) and bob (recipient), both
// with registered keys.
func parties(t *testing.T, withQUIC bool, keygenArgs ...string) (*fakeGW, *testUser, *testUser) {
	t.Helper()
	pki := newTestPKI(t)
	g := startFakeGW(t, pki, withQUIC)
	alice := pki.user(t, aliceID, g.addr, gatewayID)
	bob := pki.user(t, bobID, g.addr, gatewayID)
	for _, u := range []*testUser{alice, bob} {
		mustLex(t, u, append([]string{"keygen"}, keygenArgs...)...)
		mustLex(t, u, "register")
	}
	return g, alice, bob
}

func mustLex(t *testing.T, u *testUser, args ...string) string {
	t.Helper()
	code, out, errOut := u.lex(t, args...)
	if code != 0 {
		t.Fatalf("lex %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func sendJSON(t *testing.T, u *testUser, args ...string) sendResult {
	t.Helper()
	out := mustLex(t, u, append([]string{"send", "--json"}, args...)...)
	var res sendResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("send --json printed %q: %v", out, err)
	}
	return res
}

func TestEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name, transport, want string
		quic                  bool
		keygen                []string
	}{
		{"quic hybrid", "auto", "transport: quic (HTTP/3)", true, nil},
		{"tcp x25519", "tcp", "transport: tcp (HTTP/2)", true, []string{"--x25519"}},
		{"fallback", "auto", "QUIC failed", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, alice, bob := parties(t, tc.quic, tc.keygen...)
			out := mustLex(t, alice, "keys", bobID)
			if !strings.Contains(out, "age1") {
				t.Errorf("keys printed %q", out)
			}
			paths := sampleTree(t)
			code, out, errOut := alice.lex(t, append([]string{"-v", "--transport", tc.transport, "send", "--json",
				"--to", bobID, "--matter", "HL-2025-001", "--label", "privileged", "--region", "de", "--chunk", "4KiB"}, paths...)...)
			if code != 0 {
				t.Fatalf("send: exit %d: %s", code, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("send -v stderr %q, want %q", errOut, tc.want)
			}
			var res sendResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatal(err)
			}
			if res.FileCount != 4 || res.ID == "" || g.patches < 2 {
				t.Errorf("send result %+v after %d PATCHes", res, g.patches)
			}
			assertEmptyDir(t, filepath.Join(filepath.Dir(alice.config), "cache", "outgoing"))

			inbox := mustLex(t, bob, "inbox")
			if !strings.Contains(inbox, res.ID) || !strings.Contains(inbox, "HL-2025-001") || !strings.Contains(inbox, "privileged") {
				t.Errorf("inbox:\n%s", inbox)
			}
			dest := filepath.Join(t.TempDir(), "recv")
			out = mustLex(t, bob, "receive", res.ID, "-o", dest, "--ack")
			if !strings.Contains(out, "from "+aliceID+" (signature verified)") || !strings.Contains(out, "acknowledged") {
				t.Errorf("receive printed %q", out)
			}
			for _, rel := range []string{"exhibits/a.txt", "exhibits/b/deposition.txt", "exhibits/zero.bin"} {
				want, _ := os.ReadFile(filepath.Join(filepath.Dir(paths[0]), rel))
				got, err := os.ReadFile(filepath.Join(dest, rel))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %v, content equal %v", rel, err, bytes.Equal(got, want))
				}
			}
			assertOnly(t, dest, "cover-letter.txt", "exhibits")
			if g.transfers[res.ID].t.State != api.StateAcknowledged {
				t.Errorf("state %s after --ack", g.transfers[res.ID].t.State)
			}
			if out := mustLex(t, bob, "inbox", "--json"); !strings.Contains(out, `"transfers": []`) {
				t.Errorf("inbox after ack: %s", out)
			}
		})
	}
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	if len(ents) > 0 {
		t.Errorf("%s is not empty: %v", dir, ents)
	}
}

func TestSendRefusedByPolicy(t *testing.T) {
	g, alice, _ := parties(t, false)
	g.deny = []api.Reason{{Code: "no_agreement", Message: "no data processing agreement with manila-lpo.example"}}
	code, _, errOut := alice.lex(t, append([]string{"--transport", "tcp", "send", "--to", bobID, "--matter", "M-1"}, sampleTree(t)...)...)
	if code != ExitRefused {
		t.Fatalf("exit %d, want %d; stderr %s", code, ExitRefused, errOut)
	}
	for _, want := range []string{"refused by policy:", "no data processing agreement with manila-lpo.example", "[no_agreement]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	assertEmptyDir(t, filepath.Join(filepath.Dir(alice.config), "cache", "outgoing"))
}

func TestSendResumesAfterInterruption(t *testing.T) {
	g, alice, bob := parties(t, false)
	dir := t.TempDir()
	big := make([]byte, 300<<10)
	rand.Read(big)
	os.WriteFile(filepath.Join(dir, "scan.pdf"), big, 0o644)
	args := []string{"--transport", "tcp", "send", "--json", "--to", bobID, "--matter", "M-2", "--chunk", "64KiB", filepath.Join(dir, "scan.pdf")}

	g.breakAt = 100 << 10
	code, _, errOut := alice.lex(t, args...)
	if code != ExitError {
		t.Fatalf("interrupted send: exit %d, stderr %s", code, errOut)
	}
	outgoing := filepath.Join(filepath.Dir(alice.config), "cache", "outgoing")
	if ents, _ := os.ReadDir(outgoing); len(ents) != 2 {
		t.Fatalf("outgoing holds %v, want a state and a spool", ents)
	}

	g.mu.Lock()
	g.breakAt = 0
	g.mu.Unlock()
	code, out, errOut := alice.lex(t, args...)
	if code != 0 || !strings.Contains(errOut, "resuming") {
		t.Fatalf("second send: exit %d, stderr %q", code, errOut)
	}
	var res sendResult
	json.Unmarshal([]byte(out), &res)
	if !res.Resumed || len(g.transfers) != 1 {
		t.Errorf("resumed %v, %d transfers", res.Resumed, len(g.transfers))
	}
	assertEmptyDir(t, outgoing)
	dest := t.TempDir()
	mustLex(t, bob, "--transport", "tcp", "receive", res.ID, "-o", dest)
	if got, _ := os.ReadFile(filepath.Join(dest, "scan.pdf")); !bytes.Equal(got, big) {
		t.Error("received file differs")
	}
}

func TestSendToUnregistered(t *testing.T) {
	pki := newTestPKI(t)
	g := startFakeGW(t, pki, false)
	alice := pki.user(t, aliceID, g.addr, gatewayID)
	code, _, errOut := alice.lex(t, append([]string{"--transport", "tcp", "send", "--to", bobID, "--matter", "M"}, sampleTree(t)...)...)
	if code != ExitError || !strings.Contains(errOut, bobID+" has no registered age key") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestReceiveRefusesTampering(t *testing.T) {
	g, alice, bob := parties(t, false)
	res := sendJSON(t, alice, "--to", bobID, "--matter", "M-3", sampleTree(t)[1])
	ft := g.transfers[res.ID]

	// The gateway swaps a ciphertext byte: caught by the signed SHA-256, after the
	// download and before decryption.
	ft.data[len(ft.data)-1] ^= 1
	dest := filepath.Join(t.TempDir(), "out")
	code, _, errOut := bob.lex(t, "receive", res.ID, "-o", dest)
	if code != ExitError || !strings.Contains(errOut, "does not match the signed manifest") {
		t.Errorf("tampered ciphertext: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(dest); err == nil {
		assertOnly(t, dest)
	}
	ft.data[len(ft.data)-1] ^= 1

	// The gateway's record disagrees with the signed manifest: refused before download.
	ft.t.CiphertextSHA256 = strings.Repeat("0", 64)
	code, _, errOut = bob.lex(t, "receive", res.ID, "-o", dest)
	if code != ExitError || !strings.Contains(errOut, "differs from the signed manifest") {
		t.Errorf("bad record: exit %d, stderr %q", code, errOut)
	}
	ft.t.CiphertextSHA256 = ""

	// A forged signature.
	ft.t.Manifest.Signature[5] ^= 1
	code, _, errOut = bob.lex(t, "receive", res.ID, "-o", dest)
	if code != ExitError || !strings.Contains(errOut, "signature") {
		t.Errorf("forged signature: exit %d, stderr %q", code, errOut)
	}
}

func TestHandshakeErrors(t *testing.T) {
	pki := newTestPKI(t)
	g := startFakeGW(t, pki, true)

	wrongID := pki.user(t, aliceID, g.addr, "spiffe://harbor-law.example/not-the-gateway")
	code, _, errOut := wrongID.lex(t, "inbox")
	if code != ExitError || !strings.Contains(errOut, "the gateway's certificate is not spiffe://harbor-law.example/not-the-gateway") {
		t.Errorf("wrong gateway_id: exit %d, stderr %q", code, errOut)
	}

	// A user of a trust domain the gateway does not know.
	other := newTestPKI(t)
	stranger := other.user(t, aliceID, g.addr, gatewayID)
	for _, transport := range []string{"tcp", "quic"} {
		code, _, errOut = stranger.lex(t, "--transport", transport, "inbox")
		if code != ExitError || !strings.Contains(errOut, "the gateway's certificate does not verify against our trust bundles") {
			t.Errorf("%s, stranger: exit %d, stderr %q", transport, code, errOut)
		}
	}
	// The stranger's bundles do not hold the gateway's CA either; with the real
	// bundles but a foreign SVID the gateway is the one that refuses.
	foreign := pki.user(t, aliceID, g.addr, gatewayID)
	svid := other.svid(t, aliceID)
	dir := filepath.Dir(foreign.config)
	if err := writeSVIDFiles(dir, svid); err != nil {
		t.Fatal(err)
	}
	for _, transport := range []string{"tcp", "quic"} {
		code, _, errOut = foreign.lex(t, "--transport", transport, "inbox")
		if code != ExitError || !strings.Contains(errOut, "the gateway refused our certificate") {
			t.Errorf("%s, foreign SVID: exit %d, stderr %q", transport, code, errOut)
		}
	}
}
