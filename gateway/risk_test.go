package gateway_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/risk"
)

// TestRiskSignalsEndToEnd: ordinary sends are not flagged; after a burst of
// refusals, a send to an organisation the sender never sent to scores above
// the policy's threshold (lowered to 50 in the data for the test): the policy
// refuses it with risk.unusual, and an alert is raised — a WARN log line, the
// lexgate_risk_alerts_total metric and a risk_alert audit entry.
func TestRiskSignalsEndToEnd(t *testing.T) {
	dir := gatewaytest.PolicyDir(t, func(file string, doc map[string]any) {
		if file == "access.json" {
			doc["risk"] = map[string]any{"refuse_at": 50}
		}
	})
	env := gatewaytest.Start(t, gatewaytest.WithPolicyDir(dir), gatewaytest.WithOrganisation(gatewaytest.BogotaTD, "/site/review"),
		gatewaytest.WithConfig(func(c *gateway.Config) { c.Risk = risk.Config{MinSends: 3, RefusalBurst: 2} }))
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	team := newAPIClient(t, env, gatewaytest.Team, false)
	ct := encrypt(t, []byte("bundle"), team.register().Recipient())

	for range 3 {
		if st, _, e := alice.create([]string{gatewaytest.Team}, nil, ct, nil); st != http.StatusCreated {
			t.Fatalf("ordinary send: %d %+v", st, e)
		}
	}
	if strings.Contains(env.Logs(), "risk alert") {
		t.Fatal("ordinary activity raised a risk alert")
	}
	for range 2 {
		if st, _, _ := alice.create([]string{"spiffe://nowhere.example/x"}, nil, ct, nil); st != http.StatusForbidden {
			t.Fatalf("send to an unknown organisation: %d, want 403", st)
		}
	}
	st, _, e := alice.create([]string{gatewaytest.Bogota}, nil, ct, nil)
	var codes []string
	for _, r := range e.Reasons {
		codes = append(codes, r.Code)
	}
	if st != http.StatusForbidden || !slices.Contains(codes, "risk.unusual") {
		t.Fatalf("burst then a new organisation: %d %q, want 403 with risk.unusual", st, codes)
	}

	if !strings.Contains(env.Logs(), `"level":"WARN","msg":"risk alert`) || !strings.Contains(env.Logs(), "new_recipient_org=1") {
		t.Error("no WARN log line for the alert")
	}
	resp, err := http.Get("http://" + env.Gateway.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), "lexgate_risk_alerts_total 1") {
		t.Error("the alert is not counted in lexgate_risk_alerts_total")
	}
	var alerts []string
	for _, ev := range env.AuditEvents() {
		if ev.Kind == audit.KindRiskAlert {
			alerts = append(alerts, ev.Actor+" "+ev.Detail)
		}
	}
	if len(alerts) != 1 || !strings.Contains(alerts[0], gatewaytest.Alice+" score 55: ") {
		t.Errorf("risk_alert entries: %q", alerts)
	}
}
