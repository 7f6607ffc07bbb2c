package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// policyAdmin is the administrator of policies/data/access.json.
const policyAdmin = "spiffe://harbor-law.example/security/policy-admin"

// TestAdminQuarantineAndRevoke: lex admin quarantines a matter's transfers
// (the recipient's receive is refused, naming the quarantine), lists and
// releases them (receive works again), revokes and unrevokes an identity;
// a non-admin is refused; every change is an audit entry.
func TestAdminQuarantineAndRevoke(t *testing.T) {
	env, alice, team := setup(t)
	env.AddIdentity(policyAdmin)
	admin := env.ClientConfig(policyAdmin)
	id, _ := sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))

	if code, _, errOut := lex(t, alice, "admin", "quarantine", "--matter", "HL-2025-001", "--reason", "x"); code != cli.ExitRefused || !strings.Contains(errOut, "admin.not_admin") {
		t.Errorf("quarantine by a non-admin: exit %d %s", code, errOut)
	}
	out := mustLex(t, admin, "admin", "quarantine", "--matter", "HL-2025-001", "--since", "2020-01-01", "--reason", "suspected misdirected send")
	if !strings.Contains(out, "quarantined 1 transfers: "+id) {
		t.Errorf("quarantine printed %q", out)
	}
	if out := mustLex(t, admin, "admin", "quarantines"); !strings.Contains(out, id) || !strings.Contains(out, "suspected misdirected send") {
		t.Errorf("quarantines printed %q", out)
	}
	code, _, errOut := lex(t, team, "receive", id, "-o", filepath.Join(t.TempDir(), "q"))
	if code != cli.ExitRefused || !strings.Contains(errOut, "quarantined") {
		t.Errorf("receive of a quarantined transfer: exit %d %s", code, errOut)
	}
	if out := mustLex(t, admin, "admin", "release", "--transfer", id, "--reason", "checked: addressed correctly"); !strings.Contains(out, "released 1 transfers") {
		t.Errorf("release printed %q", out)
	}
	mustLex(t, team, "receive", id, "-o", filepath.Join(t.TempDir(), "in"))

	if out := mustLex(t, admin, "admin", "revoke", gatewaytest.Team, "--reason", "contract ended"); !strings.Contains(out, "revoked "+gatewaytest.Team) {
		t.Errorf("revoke printed %q", out)
	}
	if code, _, _ := lex(t, team, "inbox"); code == 0 {
		t.Error("a revoked identity listed its inbox")
	}
	if out := mustLex(t, admin, "admin", "revocations"); !strings.Contains(out, gatewaytest.Team) || !strings.Contains(out, "contract ended") {
		t.Errorf("revocations printed %q", out)
	}
	mustLex(t, admin, "admin", "unrevoke", gatewaytest.Team, "--reason", "contract renewed")
	mustLex(t, team, "inbox")
	if code, _, errOut := lex(t, admin, "admin", "revoke", gatewaytest.Team); code != cli.ExitUsage || !strings.Contains(errOut, "--reason") {
		t.Errorf("revoke without a reason: exit %d %s", code, errOut)
	}

	var got []string
	for _, ev := range env.AuditEvents() {
		if ev.Kind == audit.KindAdmin {
			got = append(got, ev.Action)
		}
	}
	if strings.Join(got, " ") != "admin.quarantine admin.release admin.revoke admin.unrevoke" {
		t.Errorf("admin entries %q", got)
	}
}
