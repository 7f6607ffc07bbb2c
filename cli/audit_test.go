package cli_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// sendJSON runs lex send --json and returns the transfer ID and receipt path.
func sendJSON(t *testing.T, config string, args ...string) (id, receipt string) {
	t.Helper()
	out := mustLex(t, config, append([]string{"send", "--json"}, args...)...)
	var res struct{ ID, Receipt string }
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ID == "" || res.Receipt == "" {
		t.Fatalf("send printed %q: %v", out, err)
	}
	return res.ID, res.Receipt
}

// exportEvents runs lex audit export with args and returns the events.
func exportEvents(t *testing.T, config string, args ...string) []audit.Event {
	t.Helper()
	out := mustLex(t, config, append([]string{"audit", "export"}, args...)...)
	cfg, err := cli.LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.ParseVerifier(cfg.LogKey)
	if err != nil {
		t.Fatal(err)
	}
	var evs []audit.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			Index   uint64
			Event   audit.Event
			Receipt *audit.Receipt
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		if l.Receipt == nil || l.Receipt.Index != l.Index {
			t.Fatalf("export line %d without its receipt", l.Index)
		}
		if ev, _, err := audit.VerifyReceipt(l.Receipt, v); err != nil || ev.Kind != l.Event.Kind {
			t.Fatalf("export line %d: receipt does not verify: %v", l.Index, err)
		}
		evs = append(evs, l.Event)
	}
	return evs
}

// TestAuditReceipts: the sender's and the recipient's receipts verify; changing a
// byte of the entry, the proof or the checkpoint fails, naming the part.
func TestAuditReceipts(t *testing.T) {
	env, alice, team := setup(t)
	folder := caseFolder(t)
	id, receipt := sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", folder)
	if filepath.Dir(receipt) != filepath.Dir(folder) {
		t.Errorf("receipt %s is not next to %s", receipt, folder)
	}
	out := mustLex(t, alice, "verify", receipt)
	if !strings.Contains(out, "verifies") || !strings.Contains(out, "upload_complete by "+gatewaytest.Alice) {
		t.Errorf("verify printed %q", out)
	}
	// A third party with only the log key (no lex config) checks it the same way.
	var stdout, stderr strings.Builder
	if code := cli.Main(t.Context(), []string{"verify", "--log-key", env.Gateway.LogKey(), receipt}, nil, &stdout, &stderr); code != 0 {
		t.Errorf("verify --log-key: exit %d %s", code, stderr.String())
	}
	ackReceipt := filepath.Join(t.TempDir(), "ack.json")
	mustLex(t, team, "receive", id, "-o", filepath.Join(t.TempDir(), "in"), "--ack", "--receipt", ackReceipt)
	if out := mustLex(t, team, "verify", ackReceipt); !strings.Contains(out, "ack by "+gatewaytest.Team) {
		t.Errorf("verify printed %q", out)
	}

	good, err := os.ReadFile(receipt)
	if err != nil {
		t.Fatal(err)
	}
	r, err := audit.ParseReceipt(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		part   string
		tamper func(r *audit.Receipt)
		want   string
	}{
		{"body", func(r *audit.Receipt) { r.Body = strings.Replace(r.Body, "HL-2025-001", "HL-2025-009", 1) }, "receipt entry is wrong"},
		{"salt", func(r *audit.Receipt) { r.Salt[0] ^= 1 }, "receipt entry is wrong"},
		{"entry", func(r *audit.Receipt) {
			b := []byte(r.Entry)
			b[len(b)-3] ^= 1 // a hex digit of the commitment
			r.Entry = string(b)
		}, "receipt entry is wrong"},
		{"proof", func(r *audit.Receipt) { r.InclusionProof[0][3] ^= 1 }, "receipt inclusion proof is wrong"},
		{"index", func(r *audit.Receipt) { r.Index++ }, "receipt inclusion proof is wrong"},
		{"checkpoint", func(r *audit.Receipt) { r.Checkpoint = strings.Replace(r.Checkpoint, "\n", "\n1", 1) }, "receipt checkpoint is wrong"},
		{"signature", func(r *audit.Receipt) {
			i := strings.LastIndex(r.Checkpoint, " ") + 5
			b := []byte(r.Checkpoint)
			b[i] ^= 1
			r.Checkpoint = string(b)
		}, "receipt checkpoint is wrong"},
	} {
		t.Run(tc.part, func(t *testing.T) {
			bad, _ := audit.ParseReceipt(good)
			if len(r.InclusionProof) == 0 && tc.part == "proof" {
				t.Skip("a one-entry tree has no proof")
			}
			tc.tamper(bad)
			p := filepath.Join(t.TempDir(), "bad.json")
			write(t, p, bad.Marshal())
			code, _, errOut := lex(t, alice, "verify", p)
			if code == 0 || !strings.Contains(errOut, "does NOT verify") || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %q", code, errOut, tc.want)
			}
		})
	}

	evs := exportEvents(t, alice, "--matter", "HL-2025-001")
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, string(ev.Kind))
	}
	if got := strings.Join(kinds, " "); got != "transfer_created upload_complete delivery ack" {
		t.Errorf("export --matter: %s", got)
	}
	if evs := exportEvents(t, alice, "--identity", gatewaytest.Team, "--since", "2000-01-01", "--until", "2000-01-02"); len(evs) != 0 {
		t.Errorf("export of another day: %d events", len(evs))
	}
	if out := mustLex(t, alice, "audit", "verify"); !strings.Contains(out, "verifies") {
		t.Errorf("audit verify printed %q", out)
	}
}

// TestAuditRefusalOneEntry: a refused, authenticated request leaves exactly one
// entry, with the decision id and reason codes; nothing else is logged for it.
func TestAuditRefusalOneEntry(t *testing.T) {
	env, alice, _ := setup(t)
	env.WaitPublished()
	before := exportEvents(t, alice, "--identity", gatewaytest.Alice)
	code, _, errOut := lex(t, alice, "send", "--to", gatewaytest.Team, "--matter", "HL-2025-002", "--label", "health", caseFolder(t))
	if code != cli.ExitRefused {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	env.WaitPublished()
	after := exportEvents(t, alice, "--identity", gatewaytest.Alice)
	var refused []audit.Event
	for _, ev := range after[len(before):] {
		if ev.Decision != nil && !ev.Decision.Allow {
			refused = append(refused, ev)
		}
	}
	if len(refused) != 1 {
		t.Fatalf("%d refusal entries, want 1: %+v", len(refused), refused)
	}
	ev := refused[0]
	if ev.Action != "send" || ev.Matter != "HL-2025-002" || ev.Decision.ID == "" || !strings.Contains(strings.Join(ev.Decision.Reasons, ","), "hipaa.no_baa") {
		t.Errorf("refusal entry %+v", ev)
	}
	for _, ev := range after[len(before):] {
		if ev.Kind == audit.KindTransferCreated {
			t.Errorf("a refused send logged %s", ev.Kind)
		}
	}
}

// logSize reads the size of the gateway's published checkpoint from disk.
func logSize(t *testing.T, env *gatewaytest.Env) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.Gateway.AuditDir(), "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")[1]
}

// TestAuditHandshakeFailureLeavesNoEntry: a client whose handshake fails has no
// identity, so it leaves no entry; the gateway logs the refusal.
func TestAuditHandshakeFailureLeavesNoEntry(t *testing.T) {
	env, alice, _ := setup(t, gatewaytest.WithRevoked(gatewaytest.DMS))
	mustLex(t, alice, "inbox") // the log's size settles on a published checkpoint
	env.WaitPublished()
	size := logSize(t, env)
	dms := env.ClientConfig(gatewaytest.DMS)
	for _, tr := range []string{"quic", "tcp"} {
		if code, _, errOut := lex(t, dms, "--transport", tr, "inbox"); code == 0 || !strings.Contains(errOut, "refused our certificate") {
			t.Fatalf("revoked client over %s: exit %d %q", tr, code, errOut)
		}
	}
	env.WaitPublished()
	if got := logSize(t, env); got != size {
		t.Errorf("log size %s after refused handshakes, was %s", got, size)
	}
	if !strings.Contains(env.Logs(), "refused TLS handshake") {
		t.Error("the gateway did not log the refused handshake")
	}
	resp, err := http.Get("http://" + env.Gateway.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, tr := range []string{"quic", "tcp"} {
		re := regexp.MustCompile(`lexgate_tls_handshake_refusals_total\{transport="` + tr + `"\} ([1-9]\d*)`)
		if !re.Match(metrics) {
			t.Errorf("metrics do not count the refused %s handshake", tr)
		}
	}
}

// TestAuditFailClosed: when the audit log cannot record an action, the action is
// not acknowledged: the user is told, and retrying after the fault works.
func TestAuditFailClosed(t *testing.T) {
	env, alice, team := setup(t)
	entries := filepath.Join(env.Gateway.AuditDir(), "tile", "entries")
	saved := entries + ".saved"
	if err := os.Rename(entries, saved); err != nil {
		t.Fatal(err)
	}
	write(t, entries, []byte("not a directory")) // the log can no longer write entry bundles
	// lex retries a 503 for --reconnect (1m by default): a short window here
	// shows the refusal without waiting out the default.
	code, _, errOut := lex(t, team, "--reconnect", "2s", "register")
	if code == 0 || !strings.Contains(errOut, "the audit log could not record this action") {
		t.Errorf("register with a broken log: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = lex(t, alice, "--reconnect", "2s", "send", "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	if code == 0 || !strings.Contains(errOut, "audit log could not record") {
		t.Errorf("send with a broken log: exit %d, stderr %q", code, errOut)
	}
	os.Remove(entries)
	if err := os.Rename(saved, entries); err != nil {
		t.Fatal(err)
	}
	mustLex(t, team, "register")
	sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	env.WaitPublished()
	mustLex(t, alice, "audit", "verify")
}
