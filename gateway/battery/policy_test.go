package battery_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/policy"
)

const allowAll = `{"allow": true, "reasons": [], "obligations": {}}`

// TestPolicy: the gateway fails closed. A policy that would reach the network or
// the host is refused at load (the capabilities allow-list), so the gateway
// starts with no policy and refuses everything; a decision that is undefined,
// fails, is malformed or runs past its deadline denies. Each refusal of an
// authenticated request is audited once; nothing is registered or stored.
func TestPolicy(t *testing.T) {
	rows := []struct {
		name, rego string
		reason     string        // a reason code the refusal must carry
		loadError  string        // what the log must say at load, if refused then
		timeout    time.Duration // policy.timeout
	}{
		{name: "http.send refused at load", rego: "package lexgate\n\ndecision := " + allowAll + " if {\n\thttp.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:9/\"}).status_code == 200\n}\n",
			loadError: "http.send"},
		{name: "net.lookup_ip_addr refused at load", rego: "package lexgate\n\ndecision := " + allowAll + " if {\n\tcount(net.lookup_ip_addr(\"example.com\")) > 0\n}\n",
			loadError: "net.lookup_ip_addr"},
		{name: "opa.runtime refused at load", rego: "package lexgate\n\ndecision := " + allowAll + " if {\n\topa.runtime().env.HOME != \"\"\n}\n",
			loadError: "opa.runtime"},
		{name: "undefined decision", rego: "package lexgate\n\nother := true\n", reason: policy.CodeUndefined},
		{name: "evaluation error", rego: "package lexgate\n\ndecision := " + allowAll + " if {\n\tto_number(\"not a number\") > 0\n}\n", reason: policy.CodeError},
		{name: "malformed decision", rego: "package lexgate\n\ndecision := \"yes\"\n"},
		{name: "evaluation over its deadline", rego: "package lexgate\n\ndecision := " + allowAll + " if {\n\tcount([1 | some i in numbers.range(1, 5000); some j in numbers.range(1, 5000)]) > 0\n}\n",
			reason: policy.CodeTimeout, timeout: 300 * time.Millisecond},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(row.rego), 0o600); err != nil {
				t.Fatal(err)
			}
			env := gatewaytest.Start(t, gatewaytest.WithPolicyDir(dir), gatewaytest.WithoutQUIC(),
				gatewaytest.WithConfig(func(c *gateway.Config) { c.Policy.Timeout = row.timeout }))
			defer memoryNow(t, env).back(t)
			if row.loadError != "" && !strings.Contains(env.Logs(), row.loadError) {
				t.Errorf("the log does not say the policy was refused for %s:\n%s", row.loadError, env.Logs())
			}
			team := env.NewClient(gatewaytest.Team, false).In(t)
			events := len(env.AuditEvents())
			start := time.Now()
			st, b := team.JSON(http.MethodPut, api.PathKeys, api.KeysRequest{Recipients: []string{newRecipient(t)}})
			took := time.Since(start)
			var e api.Error
			json.Unmarshal(b, &e)
			if st != http.StatusForbidden || e.Code != api.CodeDenied || len(e.Reasons) == 0 {
				t.Fatalf("register: %d %s, want 403 with reasons", st, b)
			}
			if row.reason != "" && e.Reasons[0].Code != row.reason {
				t.Errorf("reason %q, want %q", e.Reasons[0].Code, row.reason)
			}
			if row.timeout > 0 && took > row.timeout+10*time.Second { // not hung: a slow machine may take seconds
				t.Errorf("the refusal took %v with a %v policy timeout", took, row.timeout)
			}
			if st, _ := team.JSON(http.MethodGet, api.PathInbox, nil); st != http.StatusForbidden {
				t.Errorf("inbox: %d, want 403", st)
			}
			if s := env.StoreStats(); s.Keys != 0 || s.Transfers != 0 {
				t.Errorf("store changed: %+v", s)
			}
			if n := len(env.AuditEvents()) - events; n != 2 {
				t.Errorf("%d audit entries for two refused requests, want 2", n)
			}
		})
	}
}
