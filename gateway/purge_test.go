package gateway_test

import (
	"net/http"
	"testing"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestPurgeOnAck: with transfer.purge_on_ack a transfer's ciphertext and
// metadata go once its recipient acknowledges it, and the audit log says so.
func TestPurgeOnAck(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.Transfer.PurgeOnAck = true }))
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
	if st, b, _ := team.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil); st != http.StatusOK || string(b) != string(ct) {
		t.Fatalf("download: %d", st)
	}
	if n := len(env.SpoolFiles()); n != 1 {
		t.Fatalf("%d spool files before the ack, want 1", n)
	}
	if st, b := team.json(http.MethodPost, api.PathTransfer+xfer.ID+"/ack", nil); st/100 != 2 {
		t.Fatalf("ack: %d %s", st, b)
	}
	if files := env.SpoolFiles(); len(files) != 0 {
		t.Errorf("spool after the ack: %v, want nothing", files)
	}
	if st, _ := alice.json(http.MethodGet, api.PathTransfer+xfer.ID, nil); st != http.StatusNotFound {
		t.Errorf("status of a purged transfer: %d, want 404", st)
	}
	if s := env.StoreStats(); s.Transfers != 0 {
		t.Errorf("store holds %d transfers after the purge", s.Transfers)
	}
	var kinds []audit.Kind
	for _, ev := range env.AuditEvents() {
		if ev.Transfer == xfer.ID {
			kinds = append(kinds, ev.Kind)
		}
	}
	// The purge logs its expiry, then the certified destruction (issue 14).
	if n := len(kinds); n < 2 || kinds[n-2] != audit.KindExpiry || kinds[n-1] != audit.KindDestruction {
		t.Errorf("audit entries of the transfer: %v, want it to end with %s, %s", kinds, audit.KindExpiry, audit.KindDestruction)
	}
}
