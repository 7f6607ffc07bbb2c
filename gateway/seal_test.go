package gateway_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// streamed opens a streamed transfer: its signed manifest leaves the ciphertext
// hash pending. It returns the transfer and the manifest it was created from.
func (c *apiClient) streamed(to []string, size int64) (api.Transfer, api.Manifest) {
	c.t.Helper()
	id, _ := x509svid.IDFromCert(c.svid.Certificates[0])
	sm, err := api.Sign(api.Manifest{Sender: id.String(), Recipients: to, Matter: "HL-2026-0042",
		FileCount: 1, PlaintextSize: size, CiphertextSize: size}, c.svid.PrivateKey, c.svid.Certificates)
	if err != nil {
		c.t.Fatal(err)
	}
	st, b := c.json(http.MethodPost, api.PathTransfers, api.CreateTransferRequest{Manifest: *sm})
	var tr api.Transfer
	if st != http.StatusCreated || json.Unmarshal(b, &tr) != nil || tr.State != api.StateUploading {
		c.t.Fatalf("create streamed: %d %s", st, b)
	}
	m, _ := sm.Decode()
	return tr, m
}

// seal signs m as the final manifest and posts it.
func (c *apiClient) seal(id string, m api.Manifest) (int, []byte) {
	c.t.Helper()
	sm, err := api.Sign(m, c.svid.PrivateKey, c.svid.Certificates)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.json(http.MethodPost, api.PathTransfer+id+"/seal", api.SealRequest{Manifest: *sm})
}

// TestStreamedSeal: a transfer opened with its ciphertext hash pending is not
// deliverable until the sender seals it with a final manifest that differs only
// by the hash, and the hash is that of the bytes the gateway received.
func TestStreamedSeal(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	team := newAPIClient(t, env, gatewaytest.Team, false)
	key := team.register()
	pt := make([]byte, 300<<10)
	rand.Read(pt)
	ct := encrypt(t, pt, key.Recipient())
	sum := sha256.Sum256(ct)
	final := func(m api.Manifest) api.Manifest { m.CiphertextSHA256 = hex.EncodeToString(sum[:]); return m }

	xfer, intent := alice.streamed([]string{gatewaytest.Team}, int64(len(ct)))
	half := int64(len(ct) / 2)
	if st, b, _ := alice.upload(xfer.ID, 0, ct[:half]); st != http.StatusNoContent {
		t.Fatalf("first half: %d %s", st, b)
	}
	if st, b := alice.seal(xfer.ID, final(intent)); st != http.StatusConflict || !strings.Contains(string(b), api.CodeConflict) {
		t.Fatalf("seal of a half upload: %d %s, want 409", st, b)
	}
	if st, b, _ := alice.upload(xfer.ID, half, ct[half:]); st != http.StatusNoContent {
		t.Fatalf("second half: %d %s", st, b)
	}
	// Complete but unsealed: not deliverable, not listed.
	if st, _, _ := team.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil); st != http.StatusConflict {
		t.Fatalf("download before the seal: %d, want 409 not_ready", st)
	}
	if _, b := team.json(http.MethodGet, api.PathInbox, nil); strings.Contains(string(b), xfer.ID) {
		t.Fatal("an unsealed transfer is in the inbox")
	}
	// Nobody else can seal it, and the sender cannot change what was decided.
	if st, b := team.seal(xfer.ID, final(intent)); st != http.StatusNotFound {
		t.Fatalf("seal by a recipient: %d %s, want 404", st, b)
	}
	for name, change := range map[string]func(*api.Manifest){
		"recipients": func(m *api.Manifest) { m.Recipients = append(m.Recipients, gatewaytest.Alice) },
		"matter":     func(m *api.Manifest) { m.Matter = "HL-2026-0001" },
		"labels":     func(m *api.Manifest) { m.Labels = []string{"privileged"} },
		"size":       func(m *api.Manifest) { m.PlaintextSize++ },
		"nonce":      func(m *api.Manifest) { m.Nonce = strings.Repeat("0", 32) },
		"no hash":    func(m *api.Manifest) { m.CiphertextSHA256 = "" },
	} {
		m := final(intent)
		m.Recipients = append([]string(nil), m.Recipients...)
		change(&m)
		if st, b := alice.seal(xfer.ID, m); st != http.StatusBadRequest {
			t.Errorf("seal with changed %s: %d %s, want 400", name, st, b)
		}
	}
	st, b := alice.seal(xfer.ID, final(intent))
	var sealed api.Transfer
	if st != http.StatusOK || json.Unmarshal(b, &sealed) != nil || sealed.State != api.StateReady {
		t.Fatalf("seal: %d %s", st, b)
	}
	m, err := sealed.Manifest.Decode()
	if err != nil || m.CiphertextSHA256 != hex.EncodeToString(sum[:]) || sealed.ManifestHash != sealed.Manifest.Hash() {
		t.Fatalf("sealed transfer carries manifest %+v (hash %s)", m, sealed.ManifestHash)
	}
	if st, b := alice.seal(xfer.ID, final(intent)); st != http.StatusOK {
		t.Fatalf("a retried seal: %d %s", st, b)
	}
	if st, got, _ := team.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil); st != http.StatusOK || !bytes.Equal(got, ct) {
		t.Fatalf("download after the seal: %d", st)
	}

	// A seal whose hash is not that of the bytes received quarantines.
	bad, intent2 := alice.streamed([]string{gatewaytest.Team}, int64(len(ct)))
	if st, b, _ := alice.upload(bad.ID, 0, ct); st != http.StatusNoContent {
		t.Fatalf("upload: %d %s", st, b)
	}
	wrong := intent2
	wrong.CiphertextSHA256 = strings.Repeat("ab", 32)
	if st, b := alice.seal(bad.ID, wrong); st != http.StatusUnprocessableEntity || !strings.Contains(string(b), api.CodeHashMismatch) {
		t.Fatalf("seal with the wrong hash: %d %s, want 422", st, b)
	}
	if st, _, _ := team.do(http.MethodGet, api.PathTransfer+bad.ID+"/content", nil, nil); st == http.StatusOK {
		t.Fatal("a quarantined transfer was delivered")
	}
	if s := env.StoreStats(); s.Ready != 1 || s.Quarantined != 1 {
		t.Fatalf("store %+v: want one ready and one quarantined transfer", s)
	}
}

// TestCancelUpload: a sender may cancel its own upload in progress, which
// deletes the bytes that arrived and logs an expiry entry; nobody else can, and
// a sealed transfer cannot be cancelled.
func TestCancelUpload(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	team := newAPIClient(t, env, gatewaytest.Team, false)
	ct := encrypt(t, make([]byte, 200<<10), team.register().Recipient())
	xfer, _ := alice.streamed([]string{gatewaytest.Team}, int64(len(ct)))
	if st, b, _ := alice.upload(xfer.ID, 0, ct[:len(ct)/2]); st != http.StatusNoContent {
		t.Fatalf("upload: %d %s", st, b)
	}
	if st, _, _ := team.do(http.MethodDelete, api.PathTransfer+xfer.ID, nil, nil); st != http.StatusNotFound {
		t.Fatalf("cancel by a recipient: %d, want 404", st)
	}
	if st, b, _ := alice.do(http.MethodDelete, api.PathTransfer+xfer.ID, nil, nil); st != http.StatusNoContent {
		t.Fatalf("cancel: %d %s", st, b)
	}
	if s := env.StoreStats(); s.Transfers != 0 || len(env.SpoolFiles()) != 0 {
		t.Fatalf("after cancel: store %+v, spool %q", s, env.SpoolFiles())
	}
	if st, _, _ := alice.do(http.MethodGet, api.PathTransfer+xfer.ID, nil, nil); st != http.StatusNotFound {
		t.Fatalf("status after cancel: %d, want 404", st)
	}
	found := false
	for _, ev := range env.AuditEvents() {
		found = found || ev.Kind == audit.KindExpiry && ev.Transfer == xfer.ID
	}
	if !found {
		t.Error("no expiry entry in the audit log for the cancelled upload")
	}

	_, ready, _ := alice.create([]string{gatewaytest.Team}, nil, ct, nil)
	if st, b, _ := alice.upload(ready.ID, 0, ct); st != http.StatusNoContent {
		t.Fatalf("upload: %d %s", st, b)
	}
	if st, _, _ := alice.do(http.MethodDelete, api.PathTransfer+ready.ID, nil, nil); st != http.StatusBadRequest {
		t.Fatalf("cancel of a ready transfer: %d, want 400", st)
	}
}
