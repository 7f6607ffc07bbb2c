package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestIncidentReportFromGateway: lex incident report over a real, verified
// log: Harbor Law sees its transfer with its download, ack, the key that can
// decrypt it and a receipt that verifies; a third organisation asking about
// the same matter sees nothing of it (scope follows the caller's rights).
func TestIncidentReportFromGateway(t *testing.T) {
	env, alice, team := setup(t, gatewaytest.WithOrganisation(gatewaytest.BogotaTD, "/site/review"))
	id, _ := sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", "--label", "personal-data", caseFolder(t))
	mustLex(t, team, "receive", id, "-o", t.TempDir()+"/in", "--ack")
	env.WaitPublished()
	discovered := time.Now().UTC().Format(time.RFC3339)
	args := []string{"incident", "report", "--matter", "HL-2025-001", "--since", "2020-01-01", "--discovered", discovered, "--policy", "../policies", "--json"}

	var rep struct {
		Totals    map[string]int
		Transfers []struct {
			ID         string
			Downloads  []struct{ By string }
			Acks       []struct{ By string }
			Recipients []struct{ ID, Country string }
			CanDecrypt []struct{ Recipient, Fingerprint string } `json:"can_decrypt"`
			Receipt    *audit.Receipt
		}
		Deadlines []struct{ Rule string }
	}
	if err := json.Unmarshal([]byte(mustLex(t, alice, args...)), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Transfers) != 1 || rep.Transfers[0].ID != id {
		t.Fatalf("transfers %+v, want %s", rep.Transfers, id)
	}
	x := rep.Transfers[0]
	if len(x.Downloads) != 1 || len(x.Acks) != 1 || x.Recipients[0].Country != "PH" || len(x.CanDecrypt) != 1 || x.CanDecrypt[0].Recipient != gatewaytest.Team {
		t.Errorf("transfer %+v", x)
	}
	v, _ := audit.ParseVerifier(env.Gateway.LogKey())
	if ev, _, err := audit.VerifyReceipt(x.Receipt, v); err != nil || ev.Transfer != id {
		t.Errorf("the report's receipt: %+v %v", ev, err)
	}
	var rules []string
	for _, d := range rep.Deadlines {
		rules = append(rules, d.Rule)
	}
	if !strings.Contains(strings.Join(rules, " "), "ph-npc-72h") {
		t.Errorf("deadlines %q lack the Philippine NPC's", rules)
	}
	md := mustLex(t, alice, args[:len(args)-1]...)
	if !strings.Contains(md, "# Incident report: matter HL-2025-001") || !strings.Contains(md, id) {
		t.Errorf("markdown report:\n%s", md)
	}

	bogota := env.ClientConfig(gatewaytest.Bogota)
	out := mustLex(t, bogota, args...)
	if strings.Contains(out, id) || !strings.Contains(out, `"transfers": []`) {
		t.Errorf("a third organisation's report shows the transfer:\n%s", out)
	}
}
