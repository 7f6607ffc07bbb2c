package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/transfer"
)

// Issue 14: obligations stored and enforced, retention with certified
// destruction, legal hold, four-eyes — through a real gateway, real lex and
// the shipped policies with test data (gatewaytest.PolicyDir).

const govMatter = "HL-2026-0042"

// patchMatter returns a PolicyDir patch that sets fields of matter m.
func patchMatter(m string, fields map[string]any) func(string, map[string]any) {
	return func(file string, doc map[string]any) {
		if file != "matters.json" {
			return
		}
		ms, _ := doc["matters"].(map[string]any)
		rec, _ := ms[m].(map[string]any)
		if rec == nil {
			panic("test data: no matter " + m)
		}
		for k, v := range fields {
			rec[k] = v
		}
	}
}

// sendJSON sends folder from config to the team under matter and returns the transfer id.
func sendTo(t *testing.T, config, matter, folder string) string {
	t.Helper()
	out := mustLex(t, config, "send", "--json", "--to", gatewaytest.Team, "--matter", matter, folder)
	var sent struct{ ID string }
	if err := json.Unmarshal([]byte(out), &sent); err != nil || sent.ID == "" {
		t.Fatalf("send printed %q: %v", out, err)
	}
	return sent.ID
}

// inboxEntry returns the transfer id from config's inbox (--json).
func inboxEntry(t *testing.T, config, id string) api.Transfer {
	t.Helper()
	var ir api.InboxResponse
	if err := json.Unmarshal([]byte(mustLex(t, config, "inbox", "--json")), &ir); err != nil {
		t.Fatal(err)
	}
	for _, tr := range ir.Transfers {
		if tr.ID == id {
			return tr
		}
	}
	t.Fatalf("%s is not in the inbox", id)
	return api.Transfer{}
}

// auditHas reports whether the log has an event of kind about transfer (any when "")
// whose decision has reason code (any when "").
func auditHas(evs []audit.Event, kind audit.Kind, transfer, code string) bool {
	for _, ev := range evs {
		if ev.Kind != kind || (transfer != "" && ev.Transfer != transfer) {
			continue
		}
		if code == "" || (ev.Decision != nil && slices.Contains(ev.Decision.Reasons, code)) {
			return true
		}
	}
	return false
}

// TestDownloadLimit: with max_downloads 3, a download resumed from a
// checkpoint counts once, a 4-range parallel download counts once, a plain one
// once, and the fourth lex receive is refused with the reason and a
// decision id; the refusal is audited.
func TestDownloadLimit(t *testing.T) {
	dir := gatewaytest.PolicyDir(t, patchMatter(govMatter, map[string]any{"max_downloads": 3}))
	env, alice, team := setup(t, gatewaytest.WithPolicyDir(dir), gatewaytest.WithoutQUIC())
	folder, _ := bigBundle(t, 8<<20)
	id := sendTo(t, alice, govMatter, folder)
	tr := inboxEntry(t, team, id)
	if tr.Obligations == nil || tr.Obligations.MaxDownloads != 3 {
		t.Fatalf("stored obligations %+v, want max_downloads 3", tr.Obligations)
	}

	// 1. A receive stopped after a checkpoint, resumed by lex receive: one
	// count (the resumed download starts past byte 0).
	defer cli.SetCheckpointEvery(8, 4)()
	proxy := startDownCut(t, env.Addr, 3<<20)
	dest := t.TempDir()
	cancelAfterCheckpoint(t, proxy, viaProxy(t, team, env.Addr, proxy.addr()), id, dest)
	if code, _, errOut := lex(t, team, "-v", "receive", id, "-o", dest); code != 0 || strings.Contains(errOut, "from byte 0 of") {
		t.Fatalf("resumed receive: exit %d, want a download from past byte 0:\n%s", code, errOut)
	}
	if got := inboxEntry(t, team, id).Downloads; got != 1 {
		t.Errorf("after a resumed download: %d downloads counted, want 1", got)
	}

	// 2. A parallel download in several ranges: one count.
	defer cli.SetMinRange(4 << 10)()
	before := strings.Count(env.Logs(), `"status":206`)
	_, _, errOut := lex(t, team, "receive", id, "-o", t.TempDir(), "--streams", "4")
	if n := strings.Count(env.Logs(), `"status":206`) - before; n < 4 {
		t.Errorf("the parallel download made %d range requests, want at least 4", n)
	}
	if got := inboxEntry(t, team, id).Downloads; got != 2 {
		t.Errorf("after a 4-range parallel download: %d downloads counted, want 2\n%s", got, errOut)
	}

	// 3. A plain download: the third.
	mustLex(t, team, "receive", id, "-o", t.TempDir())

	// 4. Refused: limit reached, with the reason and a decision id.
	code, _, errOut := lex(t, team, "receive", id, "-o", t.TempDir())
	if code != cli.ExitRefused || !strings.Contains(errOut, "download limit reached: 3 of 3") ||
		!strings.Contains(errOut, "["+transfer.CodeDownloadLimit+"]") || !strings.Contains(errOut, "decision ") {
		t.Errorf("fourth receive: exit %d, stderr:\n%s", code, errOut)
	}
	evs := env.AuditEvents()
	if !auditHas(evs, audit.KindDecision, "", transfer.CodeDownloadLimit) {
		t.Error("the refusal is not in the audit log")
	}
	if !auditHas(evs, audit.KindTransferCreated, id, "") {
		t.Fatal("no transfer_created entry")
	}
	for _, ev := range evs {
		if ev.Kind == audit.KindTransferCreated && ev.Transfer == id && (ev.Obligations == nil || ev.Obligations.MaxDownloads != 3) {
			t.Errorf("transfer_created entry's obligations: %+v", ev.Obligations)
		}
	}
}

// waitExpiry waits until the transfer's expiry, read from the inbox, has passed.
func waitExpiry(t *testing.T, team, id string) {
	t.Helper()
	tr := inboxEntry(t, team, id)
	if tr.Obligations == nil || tr.Obligations.ExpiresAt.IsZero() {
		t.Fatalf("%s has no expiry: %+v", id, tr.Obligations)
	}
	wait := time.Until(tr.Obligations.ExpiresAt)
	if wait > 30*time.Second {
		t.Fatalf("%s expires in %v: the test data's retention_seconds did not apply", id, wait)
	}
	time.Sleep(wait + 10*time.Millisecond) // the expiry is a point in time, not an event
}

// TestRetentionHoldCertificate: with retention in seconds the sweeper deletes
// an expired transfer and its certificate verifies offline; a transfer of a
// matter on legal hold survives the sweep, is listed as held past expiry,
// and the first sweep after the hold is lifted deletes it. All audited.
func TestRetentionHoldCertificate(t *testing.T) {
	dir := gatewaytest.PolicyDir(t, patchMatter(govMatter, map[string]any{"retention_seconds": 2}))
	env, alice, team := setup(t, gatewaytest.WithPolicyDir(dir))
	ctx := t.Context()

	// Expiry → deletion → certificate, verified offline.
	id := sendTo(t, alice, govMatter, caseFolder(t))
	mustLex(t, team, "receive", id, "-o", t.TempDir())
	waitExpiry(t, team, id)
	code, _, errOut := lex(t, team, "receive", id, "-o", t.TempDir())
	if code != cli.ExitRefused || !strings.Contains(errOut, "expired on ") || !strings.Contains(errOut, transfer.CodeExpired) {
		t.Errorf("receive after expiry: exit %d\n%s", code, errOut)
	}
	r, err := env.Gateway.Sweep(ctx)
	if err != nil || r.Destroyed != 1 {
		t.Fatalf("sweep: %+v, %v", r, err)
	}
	if files := env.SpoolFiles(); len(files) != 0 {
		t.Errorf("spool after the sweep: %v", files)
	}
	certFile := filepath.Join(t.TempDir(), "cert.json")
	out := mustLex(t, alice, "certificate", "get", id, "-o", certFile)
	if !strings.Contains(out, "retention_expired") || !strings.Contains(out, "gateway held a decryption key: no") {
		t.Errorf("certificate get printed:\n%s", out)
	}
	mustLex(t, team, "certificate", "get", id, "-o", filepath.Join(t.TempDir(), "team.json"))
	var verify bytes.Buffer
	if code := cli.Main(ctx, []string{"verify", "--log-key", env.Gateway.LogKey(), certFile}, nil, &verify, &verify); code != 0 ||
		!strings.Contains(verify.String(), "destruction certificate") {
		t.Errorf("lex verify: exit %d\n%s", code, verify.String())
	}
	b, _ := os.ReadFile(certFile)
	tampered := bytes.Replace(b, []byte("retention_expired"), []byte("retention_expirex"), 1)
	os.WriteFile(certFile, tampered, 0o600)
	if code := cli.Main(ctx, []string{"verify", "--log-key", env.Gateway.LogKey(), certFile}, nil, &verify, &verify); code == 0 {
		t.Error("a tampered certificate verified")
	}

	// A legal hold keeps an expired transfer; lifting it lets the next sweep delete it.
	mustLex(t, alice, "hold", "place", "--matter", govMatter, "--reason", "litigation hold, case 26-cv-0042")
	held := sendTo(t, alice, govMatter, caseFolder(t))
	waitExpiry(t, team, held)
	if r, err := env.Gateway.Sweep(ctx); err != nil || r.Held != 1 || r.Destroyed != 0 {
		t.Fatalf("sweep under hold: %+v, %v", r, err)
	}
	if len(env.SpoolFiles()) != 1 {
		t.Errorf("the held transfer's ciphertext is gone: %v", env.SpoolFiles())
	}
	if list := mustLex(t, alice, "hold", "list"); !strings.Contains(list, held) || !strings.Contains(list, "held past expiry") {
		t.Errorf("hold list:\n%s", list)
	}
	if inbox := mustLex(t, team, "inbox"); !strings.Contains(inbox, "held past expiry") {
		t.Errorf("inbox does not mark the held transfer:\n%s", inbox)
	}
	mustLex(t, alice, "hold", "lift", "--matter", govMatter, "--reason", "case settled")
	if r, err := env.Gateway.Sweep(ctx); err != nil || r.Destroyed != 1 {
		t.Fatalf("sweep after the lift: %+v, %v", r, err)
	}
	if files := env.SpoolFiles(); len(files) != 0 {
		t.Errorf("spool after the lift and sweep: %v", files)
	}
	evs := env.AuditEvents()
	for _, want := range []struct {
		kind audit.Kind
		id   string
	}{{audit.KindDestruction, id}, {audit.KindLegalHold, ""}, {audit.KindHeldPastExpiry, held}, {audit.KindDestruction, held}} {
		if !auditHas(evs, want.kind, want.id, "") {
			t.Errorf("no %s entry for %q in the audit log", want.kind, want.id)
		}
	}
	var place, lift bool
	for _, ev := range evs {
		place = place || ev.Kind == audit.KindLegalHold && ev.Action == "legal_hold_place"
		lift = lift || ev.Kind == audit.KindLegalHold && ev.Action == "legal_hold_lift"
	}
	if !place || !lift {
		t.Errorf("legal hold entries: place %v, lift %v", place, lift)
	}
}

// TestFourEyes: a recipient not permitted on the matter is refused; its
// addition requested by alice cannot be approved by alice; once a partner
// approves, the recipient receives; both steps are audited.
func TestFourEyes(t *testing.T) {
	dir := gatewaytest.PolicyDir(t, patchMatter(govMatter, map[string]any{
		"permitted_recipients": map[string]any{"organisations": []any{}}}))
	env, alice, team := setup(t, gatewaytest.WithPolicyDir(dir))
	const partner = "spiffe://harbor-law.example/partner/carol"
	env.AddIdentity(partner)
	carol := env.ClientConfig(partner)

	code, _, errOut := lex(t, alice, "send", "--to", gatewaytest.Team, "--matter", govMatter, caseFolder(t))
	if code != cli.ExitRefused {
		t.Fatalf("send to a recipient not permitted on the matter: exit %d\n%s", code, errOut)
	}
	out := mustLex(t, alice, "matter", "request-recipient", "--json", "--matter", govMatter,
		"--recipient", gatewaytest.Team, "--reason", "second-level review in Manila")
	var req api.MatterRequest
	if err := json.Unmarshal([]byte(out), &req); err != nil || req.ID == "" {
		t.Fatalf("request printed %q: %v", out, err)
	}
	if pending := mustLex(t, carol, "matter", "pending"); !strings.Contains(pending, req.ID) {
		t.Errorf("pending:\n%s", pending)
	}
	code, _, errOut = lex(t, alice, "matter", "approve", req.ID)
	if code != cli.ExitRefused || !strings.Contains(errOut, transfer.CodeSelfApproval) {
		t.Errorf("self-approval: exit %d\n%s", code, errOut)
	}
	mustLex(t, carol, "matter", "approve", req.ID)
	id := sendTo(t, alice, govMatter, caseFolder(t))
	mustLex(t, team, "receive", id, "-o", t.TempDir())

	evs := env.AuditEvents()
	if !auditHas(evs, audit.KindMatterRequest, "", "") || !auditHas(evs, audit.KindMatterApproval, "", "") {
		t.Error("the request or the approval is not in the audit log")
	}
	if !auditHas(evs, audit.KindDecision, "", transfer.CodeSelfApproval) {
		t.Error("the refused self-approval is not in the audit log")
	}
}
