package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// clusterCutBound bounds how long after a revoke answered by one replica an
// open session on another is closed. The other replica hears of it by a
// PostgreSQL notification at once; the bound only keeps a broken test from
// hanging, and is far above the time measured (logged).
const clusterCutBound = 30 * time.Second

// deniedCodes decodes a refusal's reason codes.
func deniedCodes(t *testing.T, b []byte) []string {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("refusal %s: %v", b, err)
	}
	var codes []string
	for _, r := range e.Reasons {
		codes = append(codes, r.Code)
	}
	return codes
}

// TestClusterAdminAtOnce: two replicas on one PostgreSQL. A quarantine, a
// legal hold and revocations made through replica B take effect on replica
// A for the very next request, without a restart: the quarantined transfer
// is refused, the hold is listed and cannot be placed twice, a transfer to
// the revoked recipient is refused as identity.revoked; the upload of a
// revoked sender open on A is cut, and the revoked sender's next request on
// A refused.
func TestClusterAdminAtOnce(t *testing.T) {
	c := startCluster(t)
	a := gatewaytest.Start(t, c.replica("a"))
	a.AddIdentity(PolicyAdmin)
	b := a.StartReplica(t, c.replica("b"))
	adminB := newAPIClient(t, b, PolicyAdmin, false)
	aliceA := newAPIClient(t, a, gatewaytest.Alice, false)
	teamA := newAPIClient(t, a, gatewaytest.Team, false)
	ct := encrypt(t, make([]byte, 1<<20), teamA.register().Recipient())

	// Quarantine on B: the next download on A is refused; released on B,
	// the next one on A is served.
	st, xfer, e := aliceA.create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	if st, body, _ := aliceA.upload(xfer.ID, 0, ct); st != http.StatusNoContent {
		t.Fatalf("upload: %d %s", st, body)
	}
	content := api.PathTransfer + xfer.ID + "/content"
	adminCall(t, adminB, api.PathAdminQuarantines, api.QuarantineRequest{Transfer: xfer.ID, Reason: "suspected exfiltration"}, http.StatusOK, nil)
	st, body, _ := teamA.do(http.MethodGet, content, nil, nil)
	if st != http.StatusForbidden || !slices.Contains(deniedCodes(t, body), "transfer.quarantined") {
		t.Fatalf("download on A after a quarantine on B: %d %s, want 403 transfer.quarantined", st, body)
	}
	adminCall(t, adminB, api.PathAdminRelease, api.QuarantineRequest{Transfer: xfer.ID, Reason: "cleared"}, http.StatusOK, nil)
	if st, got, _ := teamA.do(http.MethodGet, content, nil, nil); st != http.StatusOK || !bytes.Equal(got, ct) {
		t.Fatalf("download on A after the release on B: %d, %d bytes", st, len(got))
	}

	// A legal hold placed on B is on A's list at once, and A refuses to
	// place it again.
	const matter = "HL-2026-0042"
	aliceB := newAPIClient(t, b, gatewaytest.Alice, false)
	if st, body := aliceB.json(http.MethodPost, api.PathHolds, api.HoldRequest{Matter: matter, Reason: "litigation hold"}); st/100 != 2 {
		t.Fatalf("hold on B: %d %s", st, body)
	}
	st, body = aliceA.json(http.MethodGet, api.PathHolds, nil)
	if st != http.StatusOK || !bytes.Contains(body, []byte(matter)) {
		t.Fatalf("holds on A: %d %s, want %s listed", st, body, matter)
	}
	if st, body := aliceA.json(http.MethodPost, api.PathHolds, api.HoldRequest{Matter: matter, Reason: "again"}); st/100 == 2 {
		t.Fatalf("the same hold placed again on A: %d %s", st, body)
	}

	// An upload of alice's open on A.
	st, up, e := aliceA.create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	pw, done := slowUpload(aliceA, up.ID, 0)
	defer pw.Close()
	if _, err := pw.Write(ct[:256<<10]); err != nil {
		t.Fatal(err)
	}

	// The recipient revoked on B: A's next send to it is refused with the
	// revocation's reason code (A reads the revocations version first).
	adminCall(t, adminB, api.PathAdminRevocations, api.RevokeRequest{ID: gatewaytest.Team, Reason: "key compromised"}, http.StatusCreated, nil)
	st, _, e = aliceA.create([]string{gatewaytest.Team}, nil, ct, nil)
	var codes []string
	for _, r := range e.Reasons {
		codes = append(codes, r.Code)
	}
	if st != http.StatusForbidden || !slices.Contains(codes, "identity.revoked") {
		t.Fatalf("send on A to a recipient revoked on B: %d %+v, want 403 identity.revoked", st, e)
	}

	// The sender revoked on B: its upload open on A is cut, its next
	// request on A refused.
	adminCall(t, adminB, api.PathAdminRevocations, api.RevokeRequest{ID: gatewaytest.Alice, Reason: "laptop stolen"}, http.StatusCreated, nil)
	answered := time.Now()
	go pw.Write(ct[256<<10:])
	select {
	case st := <-done:
		if st != 0 && st < 400 {
			t.Errorf("upload on A after the revoke on B: status %d, want it cut", st)
		}
	case <-time.After(clusterCutBound):
		t.Fatalf("upload on A still running %v after the revoke on B was answered", clusterCutBound)
	}
	t.Logf("upload on A cut %v after the revoke on B was answered", time.Since(answered))
	fresh := newAPIClient(t, a, gatewaytest.Alice, false)
	hc := fresh.http
	resp, err := hc.Get("https://" + a.Addr + api.PathInbox)
	if err == nil {
		defer resp.Body.Close()
		var e api.Error
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode != http.StatusForbidden || len(e.Reasons) == 0 || e.Reasons[0].Code != "identity.revoked" {
			t.Fatalf("alice's request on A after her revocation on B: %d %+v, want refused", resp.StatusCode, e)
		}
	}
}

// TestClusterApprovalAtOnce: a four-eyes approval given through replica B
// lets replica A's very next send to the recipient through: A reads the
// matter's grants from the shared store on every decision.
func TestClusterApprovalAtOnce(t *testing.T) {
	const matter = "HL-2026-0042"
	dir := gatewaytest.PolicyDir(t, func(file string, doc map[string]any) {
		if file != "matters.json" {
			return
		}
		ms, _ := doc["matters"].(map[string]any)
		rec, _ := ms[matter].(map[string]any)
		if rec == nil {
			panic("test data: no matter " + matter)
		}
		rec["permitted_recipients"] = map[string]any{"organisations": []any{}}
	})
	c := startCluster(t)
	a := gatewaytest.Start(t, c.replica("a"), gatewaytest.WithPolicyDir(dir))
	const partner = "spiffe://harbor-law.example/partner/carol"
	a.AddIdentity(partner)
	b := a.StartReplica(t, c.replica("b"), gatewaytest.WithPolicyDir(dir))
	aliceA := newAPIClient(t, a, gatewaytest.Alice, false)
	aliceB := newAPIClient(t, b, gatewaytest.Alice, false)
	carolB := newAPIClient(t, b, partner, false)
	teamA := newAPIClient(t, a, gatewaytest.Team, false)
	ct := encrypt(t, make([]byte, 1<<10), teamA.register().Recipient())

	if st, _, e := aliceA.create([]string{gatewaytest.Team}, nil, ct, nil); st != http.StatusForbidden {
		t.Fatalf("send on A to a recipient the matter does not permit: %d %+v, want 403", st, e)
	}
	var req api.MatterRequest
	st, body := aliceB.json(http.MethodPost, api.PathMatterRequests, api.MatterRequestCreate{Matter: matter,
		Recipient: gatewaytest.Team, Reason: "second-level review in Manila"})
	if st/100 != 2 || json.Unmarshal(body, &req) != nil || req.ID == "" {
		t.Fatalf("request on B: %d %s", st, body)
	}
	if st, body := carolB.json(http.MethodPost, api.PathMatterRequests+"/"+req.ID+"/approve", nil); st/100 != 2 {
		t.Fatalf("approval on B: %d %s", st, body)
	}
	if st, _, e := aliceA.create([]string{gatewaytest.Team}, nil, ct, nil); st != http.StatusCreated {
		t.Fatalf("send on A right after the approval on B: %d %+v, want 201", st, e)
	}
}
