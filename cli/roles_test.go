package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestRolesFromDirectory: people signed in as spiffe://<firm>/person/<sub>
// hold the roles their identity-provider groups map to (data/people.json,
// roles_from_groups). Through a real gateway and the real lex, a person in
// a group mapped to approver approves a matter request; a paralegal is
// refused with role.not_approver, which is audited.
func TestRolesFromDirectory(t *testing.T) {
	dir := gatewaytest.PolicyDir(t, func(file string, doc map[string]any) {
		patchMatter(govMatter, map[string]any{"permitted_recipients": map[string]any{"organisations": []any{}}})(file, doc)
		if file != "people.json" {
			return
		}
		doc["people"] = map[string]any{"harbor-law.example": map[string]any{
			"erin":  map[string]any{"groups": []any{"litigation-partners"}},
			"paula": map[string]any{"groups": []any{"paralegals"}},
		}}
		doc["roles_from_groups"] = map[string]any{"harbor-law.example": map[string]any{
			"litigation-partners": []any{"attorney", "approver"},
			"paralegals":          []any{"paralegal"},
		}}
	})
	env, alice, team := setup(t, gatewaytest.WithPolicyDir(dir))
	const erinID, paulaID = "spiffe://harbor-law.example/person/erin", "spiffe://harbor-law.example/person/paula"
	env.AddIdentity(erinID)
	env.AddIdentity(paulaID)
	erin, paula := env.ClientConfig(erinID), env.ClientConfig(paulaID)

	out := mustLex(t, alice, "matter", "request-recipient", "--json", "--matter", govMatter,
		"--recipient", gatewaytest.Team, "--reason", "second-level review in Manila")
	var req api.MatterRequest
	if err := json.Unmarshal([]byte(out), &req); err != nil || req.ID == "" {
		t.Fatalf("request printed %q: %v", out, err)
	}

	code, _, errOut := lex(t, paula, "matter", "approve", req.ID)
	if code != cli.ExitRefused || !strings.Contains(errOut, "role.not_approver") {
		t.Fatalf("approval by a paralegal: exit %d, want %d with role.not_approver\n%s", code, cli.ExitRefused, errOut)
	}
	if !auditHas(env.AuditEvents(), audit.KindDecision, "", "role.not_approver") {
		t.Error("the refused approval is not in the audit log")
	}

	mustLex(t, erin, "matter", "approve", req.ID)
	id := sendTo(t, alice, govMatter, caseFolder(t))
	mustLex(t, team, "receive", id, "-o", t.TempDir())
	if !auditHas(env.AuditEvents(), audit.KindMatterApproval, "", "") {
		t.Error("the approval is not in the audit log")
	}
}
