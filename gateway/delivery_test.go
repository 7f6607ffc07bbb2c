package gateway_test

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestLargeDeliveryCheckedWhileServed: a ciphertext above the inline-check size
// is served at once and checked against its signed hash as it goes; a bit
// flipped on disk means the download never gets its last bytes, and the
// transfer is quarantined and audited.
func TestLargeDeliveryCheckedWhileServed(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	team := newAPIClient(t, env, gatewaytest.Team, false)
	pt := make([]byte, 66<<20)
	rand.Read(pt)
	ct := encrypt(t, pt, team.register().Recipient())
	st, xfer, e := alice.create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	if st, b, _ := alice.upload(xfer.ID, 0, ct); st != http.StatusNoContent {
		t.Fatalf("upload: %d %s", st, b)
	}
	path := api.PathTransfer + xfer.ID + "/content"
	if st, got, _ := team.do(http.MethodGet, path, nil, nil); st != http.StatusOK || !bytes.Equal(got, ct) {
		t.Fatalf("download of an intact file: %d, %d of %d bytes", st, len(got), len(ct))
	}

	env.FlipSpoolBit(5 << 20)

	_, got, _ := team.do(http.MethodGet, path, nil, nil)
	if len(got) >= len(ct)-(1<<20) {
		t.Fatalf("a corrupted file was served up to byte %d of %d; its last MiB must be held back", len(got), len(ct))
	}
	waitFor(t, func() bool { return env.StoreStats().Quarantined == 1 }, "the transfer to be quarantined")
	if st, b, _ := team.do(http.MethodGet, path, nil, nil); st == http.StatusOK || len(b) > 4096 {
		t.Fatalf("download after the quarantine: %d %s", st, b)
	}
	found := false
	for _, ev := range env.AuditEvents() {
		found = found || ev.Kind == audit.KindQuarantined && ev.Transfer == xfer.ID
	}
	if !found {
		t.Error("the quarantine found at delivery is not in the audit log")
	}
}
