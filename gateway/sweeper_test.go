package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestSweeperRuns: the gateway's own sweeper (transfer.sweep_interval)
// deletes a transfer once its retention expired and issues its certificate,
// with no one calling Sweep; stopping the gateway stops it (Stop would hang
// otherwise).
func TestSweeperRuns(t *testing.T) {
	policies := gatewaytest.PolicyDir(t, func(file string, doc map[string]any) {
		if file == "matters.json" {
			doc["matters"].(map[string]any)["HL-2026-0042"].(map[string]any)["retention_seconds"] = 1
		}
	})
	env := gatewaytest.Start(t, gatewaytest.WithPolicyDir(policies),
		gatewaytest.WithConfig(func(c *gateway.Config) { c.Transfer.SweepInterval = 100 * time.Millisecond }))
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	team := newAPIClient(t, env, gatewaytest.Team, false)
	key := team.register()
	ct := encrypt(t, []byte("privileged memo"), key.Recipient())
	st, xfer, e := alice.create([]string{gatewaytest.Team}, []string{"privileged"}, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	if st, b, _ := alice.upload(xfer.ID, 0, ct); st != http.StatusNoContent {
		t.Fatalf("upload: %d %s", st, b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _, _ := alice.do(http.MethodGet, api.PathTransfer+xfer.ID+"/certificate", nil, nil)
		if st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate 30s after a 1s retention (last status %d)", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if files := env.SpoolFiles(); len(files) != 0 {
		t.Errorf("spool after the sweep: %v", files)
	}
	env.Stop()
}
