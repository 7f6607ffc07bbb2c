package gateway_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

var transports = []struct {
	name string
	quic bool
}{{"quic", true}, {"tcp", false}}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf("timed out waiting for %s", what)
}

// TestVisibility: a transfer exists only for its sender and recipients. Anyone
// else gets exactly the 404 of a transfer that does not exist.
func TestVisibility(t *testing.T) {
	env := gatewaytest.Start(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			alice := newAPIClient(t, env, gatewaytest.Alice, tr.quic)
			team := newAPIClient(t, env, gatewaytest.Team, tr.quic)
			dms := newAPIClient(t, env, gatewaytest.DMS, tr.quic)
			key := team.register()
			ct := encrypt(t, []byte("privileged memo"), key.Recipient())
			st, xfer, e := alice.create([]string{gatewaytest.Team}, []string{"privileged"}, ct, nil)
			if st != http.StatusCreated {
				t.Fatalf("create: %d %+v", st, e)
			}
			if st, b, _ := alice.upload(xfer.ID, 0, ct); st != http.StatusNoContent {
				t.Fatalf("upload: %d %s", st, b)
			}

			_, notFound := dms.json(http.MethodGet, api.PathTransfer+"00000000000000000000000000000000", nil)
			notFound = stripRequestID(notFound)
			for _, probe := range []struct{ method, path string }{
				{http.MethodGet, api.PathTransfer + xfer.ID},
				{http.MethodGet, api.PathTransfer + xfer.ID + "/content"},
				{http.MethodPost, api.PathTransfer + xfer.ID + "/ack"},
				{http.MethodHead, api.PathTransfer + xfer.ID + "/content"},
			} {
				st, b, _ := dms.do(probe.method, probe.path, nil, nil)
				if st != http.StatusNotFound {
					t.Errorf("%s %s by a stranger: %d, want 404", probe.method, probe.path, st)
				}
				if probe.method != http.MethodHead && !bytes.Equal(stripRequestID(b), notFound) {
					t.Errorf("%s %s: 404 body %s differs from a missing transfer's %s", probe.method, probe.path, b, notFound)
				}
			}
			if st, b := dms.json(http.MethodGet, api.PathInbox, nil); st != http.StatusOK || strings.Contains(string(b), xfer.ID) {
				t.Errorf("stranger's inbox: %d %s", st, b)
			}
			// The recipient may not upload into it, the sender may not download it.
			if st, _, _ := team.upload(xfer.ID, 0, ct); st != http.StatusNotFound {
				t.Errorf("recipient upload: %d, want 404", st)
			}
			if st, _, _ := alice.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil); st != http.StatusNotFound {
				t.Errorf("sender download: %d, want 404", st)
			}
			// The recipient sees it, downloads a range, then the whole, and acknowledges.
			if st, b := team.json(http.MethodGet, api.PathInbox, nil); st != http.StatusOK || !strings.Contains(string(b), xfer.ID) {
				t.Fatalf("recipient inbox: %d %s", st, b)
			}
			st, part, _ := team.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, map[string]string{"Range": "bytes=10-19"})
			if st != http.StatusPartialContent || !bytes.Equal(part, ct[10:20]) {
				t.Fatalf("range download: %d, %d bytes", st, len(part))
			}
			st, whole, _ := team.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil)
			if st != http.StatusOK || !bytes.Equal(whole, ct) {
				t.Fatalf("download: %d, %d bytes", st, len(whole))
			}
			r, err := age.Decrypt(bytes.NewReader(whole), key)
			if err != nil {
				t.Fatal(err)
			}
			if pt, _ := readAll(r); string(pt) != "privileged memo" {
				t.Fatalf("decrypted %q", pt)
			}
			if st, b := team.json(http.MethodPost, api.PathTransfer+xfer.ID+"/ack", nil); st != http.StatusNoContent {
				t.Fatalf("ack: %d %s", st, b)
			}
			if st, b := team.json(http.MethodGet, api.PathInbox, nil); st != http.StatusOK || strings.Contains(string(b), xfer.ID) {
				t.Errorf("acknowledged transfer still in inbox: %s", b)
			}
		})
	}
}

func stripRequestID(b []byte) []byte {
	var e map[string]any
	if json.Unmarshal(b, &e) != nil {
		return b
	}
	delete(e, "request_id")
	out, _ := json.Marshal(e)
	return out
}

// TestRegisterKeyOnlyForSelf: the key registered is always the caller's; a body
// naming another identity is refused.
func TestRegisterKeyOnlyForSelf(t *testing.T) {
	env := gatewaytest.Start(t)
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	id, _ := age.GenerateHybridIdentity()
	body := map[string]any{"id": gatewaytest.Team, "recipients": []string{id.Recipient().String()}}
	if st, b := alice.json(http.MethodPut, api.PathKeys, body); st != http.StatusBadRequest {
		t.Fatalf("register for another ID: %d %s, want 400", st, b)
	}
	if st, _ := alice.json(http.MethodGet, api.PathKeys+"?id="+gatewaytest.Team, nil); st != http.StatusNotFound {
		t.Fatalf("team has a key after alice tried to register one for it: %d", st)
	}
	if st, b := alice.json(http.MethodPut, api.PathKeys, api.KeysRequest{Recipients: []string{"age1notakey"}}); st != http.StatusBadRequest {
		t.Fatalf("malformed recipient: %d %s", st, b)
	}
	alice.register()
	st, b := alice.json(http.MethodGet, api.PathKeys+"?id="+gatewaytest.Alice, nil)
	var k api.KeysResponse
	json.Unmarshal(b, &k)
	if st != http.StatusOK || k.ID != gatewaytest.Alice || len(k.Recipients) != 1 || !strings.HasPrefix(k.Recipients[0], "age1pq1") {
		t.Fatalf("alice's keys: %d %s", st, b)
	}
}

// TestPolicyRefusalStoresNothing: a send the policy refuses returns its reasons
// and leaves the spool and the metadata exactly as they were.
func TestPolicyRefusalStoresNothing(t *testing.T) {
	env := gatewaytest.Start(t)
	alice := newAPIClient(t, env, gatewaytest.Alice, true)
	team := newAPIClient(t, env, gatewaytest.Team, true)
	key := team.register()
	before := env.StoreStats()
	ct := encrypt(t, []byte("patient records"), key.Recipient())
	st, _, e := alice.create([]string{gatewaytest.Team}, []string{"health"}, ct, nil)
	if st != http.StatusForbidden || e.Code != api.CodeDenied || e.DecisionID == "" {
		t.Fatalf("create: %d %+v, want 403 denied with a decision id", st, e)
	}
	if len(e.Reasons) == 0 || e.Reasons[0].Code != "hipaa.no_baa" || !strings.Contains(e.Reasons[0].Message, "BAA") {
		t.Fatalf("reasons: %+v", e.Reasons)
	}
	if after := env.StoreStats(); after != before {
		t.Fatalf("store changed by a refused send: before %+v after %+v", before, after)
	}
	if files := env.SpoolFiles(); len(files) != 0 {
		t.Fatalf("spool holds %v", files)
	}
	// An organisation with no agreement in force is refused the same way.
	st, _, e = alice.create([]string{"spiffe://bogota-lpo.example/site/review"}, nil, ct, nil)
	if st != http.StatusForbidden || !strings.Contains(e.Error(), "expired on 2026-03-31") {
		t.Fatalf("send to bogota: %d %v", st, e.Error())
	}
}

// TestUploadIntegrity: uploads resume by offset; a wrong offset says the right
// one; a complete upload whose SHA-256 differs from the manifest is quarantined
// and never deliverable.
func TestUploadIntegrity(t *testing.T) {
	env := gatewaytest.Start(t)
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	team := newAPIClient(t, env, gatewaytest.Team, false)
	key := team.register()
	pt := make([]byte, 1<<20)
	rand.Read(pt)
	ct := encrypt(t, pt, key.Recipient())

	st, xfer, e := alice.create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	half := int64(len(ct) / 2)
	if st, _, h := alice.upload(xfer.ID, 0, ct[:half]); st != http.StatusNoContent || h.Get(api.HeaderUploadOffset) != itoa(half) {
		t.Fatalf("first half: %d offset %s", st, h.Get(api.HeaderUploadOffset))
	}
	if st, _, h := alice.do(http.MethodHead, api.PathTransfer+xfer.ID+"/content", nil, nil); st != http.StatusNoContent || h.Get(api.HeaderUploadOffset) != itoa(half) {
		t.Fatalf("HEAD offset: %d %s", st, h.Get(api.HeaderUploadOffset))
	}
	if st, b, h := alice.upload(xfer.ID, 7, ct[7:]); st != http.StatusConflict || h.Get(api.HeaderUploadOffset) != itoa(half) {
		t.Fatalf("wrong offset: %d %s", st, b)
	}
	if st, _, _ := team.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil); st != http.StatusConflict {
		t.Fatalf("download of a partial upload: %d, want 409 not_ready", st)
	}
	// Re-creating the same signed manifest resumes: same transfer, durable offset.
	var sm api.SignedManifest = xfer.Manifest
	st2, b := alice.json(http.MethodPost, api.PathTransfers, api.CreateTransferRequest{Manifest: sm})
	var again api.Transfer
	json.Unmarshal(b, &again)
	if st2 != http.StatusOK || again.ID != xfer.ID || again.Offset != half {
		t.Fatalf("re-create: %d %s", st2, b)
	}
	if st, b, _ := alice.upload(xfer.ID, half, ct[half:]); st != http.StatusNoContent {
		t.Fatalf("second half: %d %s", st, b)
	}
	st, got, _ := team.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil)
	if st != http.StatusOK || sha256.Sum256(got) != sha256.Sum256(ct) {
		t.Fatalf("download after resume: %d", st)
	}

	// Wrong hash: the manifest promises one ciphertext, the upload is another.
	other := encrypt(t, pt, key.Recipient())
	sum := sha256.Sum256(ct)
	st, bad, e := alice.create([]string{gatewaytest.Team}, nil, other, sum[:])
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	if st, b, _ := alice.upload(bad.ID, 0, other); st != http.StatusUnprocessableEntity || !strings.Contains(string(b), api.CodeHashMismatch) {
		t.Fatalf("mismatched upload: %d %s", st, b)
	}
	if st, _, _ := team.do(http.MethodGet, api.PathTransfer+bad.ID+"/content", nil, nil); st == http.StatusOK {
		t.Fatal("a quarantined transfer was delivered")
	}
	if _, b := team.json(http.MethodGet, api.PathInbox, nil); strings.Contains(string(b), bad.ID) {
		t.Fatal("a quarantined transfer is in the inbox")
	}
	if s := env.StoreStats(); s.Quarantined != 1 || s.Ready != 1 {
		t.Fatalf("store: %+v", s)
	}
	// Over-long upload: stopped at the declared size.
	st, long, _ := alice.create([]string{gatewaytest.Team}, nil, ct[:100], nil)
	if st != http.StatusCreated {
		t.Fatal(st)
	}
	if st, _, _ := alice.upload(long.ID, 0, ct[:4096]); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("over-long upload: %d, want 413", st)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func readAll(r interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}
