package gateway_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/risk"
)

// riskOptions are the options of the risk tests: the policy refuses from a
// score of 50; an identity is judged on new organisations after 3 sends,
// and 2 refusals in an hour are a burst. A burst of refusals and a send to
// a new organisation then score 55.
func riskOptions(t *testing.T) []gatewaytest.Option {
	dir := gatewaytest.PolicyDir(t, func(file string, doc map[string]any) {
		if file == "access.json" {
			doc["risk"] = map[string]any{"refuse_at": 50}
		}
	})
	return []gatewaytest.Option{gatewaytest.WithPolicyDir(dir),
		gatewaytest.WithConfig(func(c *gateway.Config) { c.Risk = risk.Config{MinSends: 3, RefusalBurst: 2} })}
}

func reasonCodes(e api.Error) []string {
	var codes []string
	for _, r := range e.Reasons {
		codes = append(codes, r.Code)
	}
	return codes
}

// riskSteps are the sends of the risk tests, by one client each.
type riskSteps struct {
	t  *testing.T
	ct []byte
}

func (s riskSteps) ordinary(c *apiClient) {
	s.t.Helper()
	if st, _, e := c.create([]string{gatewaytest.Team}, nil, s.ct, nil); st != http.StatusCreated {
		s.t.Fatalf("ordinary send: %d %+v", st, e)
	}
}

func (s riskSteps) refused(c *apiClient) {
	s.t.Helper()
	if st, _, e := c.create([]string{"spiffe://nowhere.example/x"}, nil, s.ct, nil); st != http.StatusForbidden || slices.Contains(reasonCodes(e), "risk.unusual") {
		s.t.Fatalf("send to an unknown organisation: %d %q, want 403 for the organisation", st, reasonCodes(e))
	}
}

// burst sends to an organisation alice never sent to: refused with
// risk.unusual when the history before it is counted.
func (s riskSteps) burst(c *apiClient) {
	s.t.Helper()
	st, _, e := c.create([]string{gatewaytest.Bogota}, nil, s.ct, nil)
	if st != http.StatusForbidden || !slices.Contains(reasonCodes(e), "risk.unusual") {
		s.t.Fatalf("a refusal burst then a new organisation: %d %q, want 403 with risk.unusual", st, reasonCodes(e))
	}
}

// TestRiskBaselinesSurviveRestart: the baselines live in the store. Sends
// and a refusal before a restart count after it: ordinary activity after
// the restart raises no alert, and one more refusal then a send to a new
// organisation is refused as unusual — which a gateway that forgot its
// history (fewer than 3 sends, one refusal) would allow.
func TestRiskBaselinesSurviveRestart(t *testing.T) {
	env := gatewaytest.Start(t, append(riskOptions(t), gatewaytest.WithOrganisation(gatewaytest.BogotaTD, "/site/review"))...)
	team := newAPIClient(t, env, gatewaytest.Team, false)
	s := riskSteps{t, encrypt(t, []byte("bundle"), team.register().Recipient())}
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	for range 3 {
		s.ordinary(alice)
	}
	s.refused(alice)

	env.CloseClients()
	env.Restart()
	alice = newAPIClient(t, env, gatewaytest.Alice, false)
	s.ordinary(alice)
	if strings.Contains(env.Logs(), "risk alert") {
		t.Fatal("ordinary activity raised a risk alert")
	}
	s.refused(alice)
	s.burst(alice)
	if !strings.Contains(env.Logs(), "new_recipient_org=1") || !strings.Contains(env.Logs(), "refusal_burst=2") {
		t.Error("the alert does not name the new organisation and the refusal burst")
	}
}

// TestRiskBaselinesCluster: two replicas on one PostgreSQL store keep one
// baseline. Alice's sends and refusals are split between them, so that
// neither alone has 3 sends or 2 refusals: the send to a new organisation
// is still refused as unusual, on either replica.
func TestRiskBaselinesCluster(t *testing.T) {
	c := startCluster(t)
	opts := riskOptions(t)
	r1 := gatewaytest.Start(t, append(opts, gatewaytest.WithOrganisation(gatewaytest.BogotaTD, "/site/review"), c.replica("r1"))...)
	r2 := r1.StartReplica(t, append(opts, c.replica("r2"))...)
	team := newAPIClient(t, r1, gatewaytest.Team, false)
	s := riskSteps{t, encrypt(t, []byte("bundle"), team.register().Recipient())}
	alice1, alice2 := newAPIClient(t, r1, gatewaytest.Alice, false), newAPIClient(t, r2, gatewaytest.Alice, false)
	s.ordinary(alice1)
	s.ordinary(alice2)
	s.ordinary(alice1)
	s.refused(alice2)
	if strings.Contains(r1.Logs()+r2.Logs(), "risk alert") {
		t.Fatal("ordinary activity raised a risk alert")
	}
	s.refused(alice1)
	s.burst(alice2)
	s.burst(alice1)
}
