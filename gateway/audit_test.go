package gateway_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// auditEvents returns every event of the gateway's audit log, verified.
func auditEvents(t *testing.T, env *gatewaytest.Env) []audit.Event {
	t.Helper()
	return env.AuditEvents()
}

// TestAuditOneEntryPerRefusal: under a policy that refuses everything, every
// authenticated request that the policy refuses leaves exactly one entry, a
// refusal by the caller for that action, and nothing else.
func TestAuditOneEntryPerRefusal(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte("package lexgate\n\ndecision := \"no\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := gatewaytest.Start(t, gatewaytest.WithPolicyDir(dir))
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	requests := map[string]func() int{
		"register_key": func() int {
			st, _ := alice.json(http.MethodPut, api.PathKeys, api.KeysRequest{Recipients: []string{newIdentity(t)}})
			return st
		},
		"lookup_key": func() int {
			st, _ := alice.json(http.MethodGet, api.PathKeys+"?id="+gatewaytest.Team, nil)
			return st
		},
		"list_inbox": func() int { st, _ := alice.json(http.MethodGet, api.PathInbox, nil); return st },
		"send": func() int {
			st, _, _ := alice.create([]string{gatewaytest.Team}, []string{"privileged"}, []byte("ciphertext"), nil)
			return st
		},
	}
	for action, do := range requests {
		before := len(auditEvents(t, env))
		if st := do(); st != http.StatusForbidden {
			t.Fatalf("%s: status %d, want 403", action, st)
		}
		evs := auditEvents(t, env)[before:]
		if len(evs) != 1 {
			t.Fatalf("%s left %d entries, want 1: %+v", action, len(evs), evs)
		}
		ev := evs[0]
		if ev.Kind != audit.KindDecision || ev.Action != action || ev.Actor != gatewaytest.Alice ||
			ev.Decision == nil || ev.Decision.Allow || len(ev.Decision.Reasons) == 0 {
			t.Errorf("%s: entry %+v", action, ev)
		}
	}
}

// TestAuditTransferLifecycle: a transfer's life is in the log in order, and the
// receipt endpoint gives the sender its upload receipt and a recipient its ack
// receipt, each verifying with the gateway's log key.
func TestAuditTransferLifecycle(t *testing.T) {
	env := gatewaytest.Start(t)
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	team := newAPIClient(t, env, gatewaytest.Team, true)
	id := team.register()
	ct := encrypt(t, []byte("privileged memo"), id.Recipient())
	st, xfer, e := alice.create([]string{gatewaytest.Team}, []string{"privileged"}, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	receipt := api.PathTransfer + xfer.ID + "/receipt"
	if st, _ := alice.json(http.MethodGet, receipt, nil); st != http.StatusConflict {
		t.Errorf("receipt before the upload completes: %d, want 409", st)
	}
	if st, b, _ := alice.upload(xfer.ID, 0, ct); st != http.StatusNoContent {
		t.Fatalf("upload: %d %s", st, b)
	}
	if st, b, _ := team.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil); st != http.StatusOK {
		t.Fatalf("download: %d %s", st, b)
	}
	if st, _ := team.json(http.MethodGet, receipt, nil); st != http.StatusConflict {
		t.Errorf("recipient's receipt before its ack: %d, want 409", st)
	}
	if st, b := team.json(http.MethodPost, api.PathTransfer+xfer.ID+"/ack", nil); st != http.StatusNoContent {
		t.Fatalf("ack: %d %s", st, b)
	}
	v, _ := audit.ParseVerifier(env.Gateway.LogKey())
	for who, c := range map[audit.Kind]*apiClient{audit.KindUploadComplete: alice, audit.KindAck: team} {
		st, b := c.json(http.MethodGet, receipt, nil)
		if st != http.StatusOK {
			t.Fatalf("%s receipt: %d %s", who, st, b)
		}
		r, err := audit.ParseReceipt(b)
		if err != nil {
			t.Fatal(err)
		}
		ev, _, err := audit.VerifyReceipt(r, v)
		if err != nil || ev.Kind != who || ev.Transfer != xfer.ID || ev.CiphertextSHA256 != xfer.CiphertextSHA256 {
			t.Errorf("%s receipt: %+v, %v", who, ev, err)
		}
	}
	var kinds []string
	for _, ev := range auditEvents(t, env) {
		if ev.Transfer == xfer.ID || ev.Kind == audit.KindKeyRegistration {
			kinds = append(kinds, string(ev.Kind))
		}
		if strings.Contains(mustJSON(t, ev), "privileged memo") {
			t.Errorf("an entry holds plaintext: %+v", ev)
		}
	}
	if got := strings.Join(kinds, " "); got != "key_registration transfer_created upload_complete delivery ack" {
		t.Errorf("transfer entries: %s", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newIdentity(t *testing.T) string {
	t.Helper()
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient().String()
}
