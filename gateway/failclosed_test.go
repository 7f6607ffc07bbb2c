package gateway_test

import (
	"encoding/json"
	"filippo.io/age"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestPolicyFailsClosed: a policy whose decision is undefined, or whose evaluation
// fails, denies every action; nothing is registered or stored.
func TestPolicyFailsClosed(t *testing.T) {
	cases := map[string]string{
		"undefined decision": "package lexgate\n\nother := true\n",
		"evaluation error":   "package lexgate\n\ndecision := {\"allow\": true, \"reasons\": [], \"obligations\": {}} if {\n\tto_number(\"not a number\") > 0\n}\n",
		"malformed decision": "package lexgate\n\ndecision := \"yes\"\n",
	}
	for name, rego := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(rego), 0o600); err != nil {
				t.Fatal(err)
			}
			env := gatewaytest.Start(t, gatewaytest.WithPolicyDir(dir))
			team := newAPIClient(t, env, gatewaytest.Team, false)
			st, b := team.json(http.MethodPut, api.PathKeys, api.KeysRequest{Recipients: []string{"age1pq1" + "x"}})
			if st != http.StatusBadRequest { // malformed key: refused before the policy
				t.Fatalf("bad key: %d %s", st, b)
			}
			id := newIdentity(t)
			st, b = team.json(http.MethodPut, api.PathKeys, api.KeysRequest{Recipients: []string{id}})
			var e api.Error
			json.Unmarshal(b, &e)
			if st != http.StatusForbidden || e.Code != api.CodeDenied || len(e.Reasons) == 0 {
				t.Fatalf("register under a broken policy: %d %s, want 403 with reasons", st, b)
			}
			if st, _ := team.json(http.MethodGet, api.PathInbox, nil); st != http.StatusForbidden {
				t.Fatalf("inbox under a broken policy: %d, want 403", st)
			}
			if s := env.StoreStats(); s.Keys != 0 || s.Transfers != 0 {
				t.Fatalf("store changed: %+v", s)
			}
		})
	}
}

func newIdentity(t *testing.T) string {
	t.Helper()
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient().String()
}
