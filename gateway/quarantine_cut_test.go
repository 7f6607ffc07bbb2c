package gateway_test

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// openDownload starts a download of transfer id as c and reads its first
// MiB, leaving the rest unread: the gateway is then blocked writing it.
func openDownload(t *testing.T, c *apiClient, id string) *http.Response {
	t.Helper()
	resp, err := c.http.Get("https://" + c.env.Addr + api.PathTransfer + id + "/content")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d", resp.StatusCode)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatalf("the download's first MiB: %v", err)
	}
	return resp
}

// assertCut reads the rest of a download as a slow recipient would (about
// 10 MiB/s, so that the 48 MiB take seconds whatever the machine) and fails
// unless it ends early, with an error, before the size of the ciphertext.
func assertCut(t *testing.T, resp *http.Response, size int64) {
	t.Helper()
	var n int64
	var err error
	for err == nil {
		var k int64
		k, err = io.CopyN(io.Discard, resp.Body, 256<<10)
		n += k
		time.Sleep(25 * time.Millisecond)
	}
	if err == io.EOF {
		err = nil
	}
	if err == nil || 1<<20+n >= size {
		t.Fatalf("the download went on after the quarantine: %d of %d bytes, error %v", 1<<20+n, size, err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("the download ended with %v", err)
	}
}

// uploadTo creates and uploads a transfer of ct from alice to the team.
func uploadTo(t *testing.T, alice *apiClient, ct []byte) string {
	t.Helper()
	st, xfer, e := alice.create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	if st, body, _ := alice.upload(xfer.ID, 0, ct); st != http.StatusNoContent {
		t.Fatalf("upload: %d %s", st, body)
	}
	return xfer.ID
}

// assertQuarantinedRefusal fails unless the next download of id is refused
// as transfer.quarantined.
func assertQuarantinedRefusal(t *testing.T, team *apiClient, id string) {
	t.Helper()
	st, body, _ := team.do(http.MethodGet, api.PathTransfer+id+"/content", nil, nil)
	if st != http.StatusForbidden || !slices.Contains(deniedCodes(t, body), "transfer.quarantined") {
		t.Fatalf("download after the quarantine: %d %s, want 403 transfer.quarantined", st, body)
	}
}

// TestQuarantineCutsDownloadInProgress: a download under way when an admin
// quarantines its transfer stops before its end (the bytes still in the
// sockets are all the recipient gets), and the recipient's next request is
// refused as transfer.quarantined.
func TestQuarantineCutsDownloadInProgress(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	env.AddIdentity(PolicyAdmin)
	quarantineCutsDownload(t, env, env)
}

// TestClusterQuarantineCutsDownload: on a cluster, a download open on
// replica A stops once an admin quarantines its transfer through replica B
// (A's delivery re-reads the transfer's state from the shared store every
// second).
func TestClusterQuarantineCutsDownload(t *testing.T) {
	c := startCluster(t)
	a := gatewaytest.Start(t, c.replica("a"))
	a.AddIdentity(PolicyAdmin)
	quarantineCutsDownload(t, a, a.StartReplica(t, c.replica("b")))
}

// quarantineCutsDownload sends a transfer through gateway on, starts the
// recipient's download there, has the admin quarantine it through
// gateway by, and checks that the download is cut and the next refused.
func quarantineCutsDownload(t *testing.T, on, by *gatewaytest.Env) {
	admin := newAPIClient(t, by, PolicyAdmin, false)
	alice := newAPIClient(t, on, gatewaytest.Alice, false)
	team := newAPIClient(t, on, gatewaytest.Team, false)
	ct := encrypt(t, make([]byte, 48<<20), team.register().Recipient())
	id := uploadTo(t, alice, ct)

	resp := openDownload(t, team, id)
	adminCall(t, admin, api.PathAdminQuarantines, api.QuarantineRequest{Transfer: id, Reason: "misdirected send"}, http.StatusOK, nil)
	answered := time.Now()
	assertCut(t, resp, int64(len(ct)))
	t.Logf("download cut %v after the quarantine was answered", time.Since(answered))
	assertQuarantinedRefusal(t, team, id)
}

// TestIntegrityReportCutsDownloadInProgress: a download under way when
// another request finds the transfer's stored ciphertext damaged (here a
// recipient's report, which the gateway checks against its stored copy)
// stops before its end — cut at once by the quarantine, or else by the
// delivery's own recheck of its transfer's state within a second (either
// one alone passes this test) — and the next download is refused.
func TestIntegrityReportCutsDownloadInProgress(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	alice := newAPIClient(t, env, gatewaytest.Alice, false)
	team := newAPIClient(t, env, gatewaytest.Team, false)
	ct := encrypt(t, make([]byte, 48<<20), team.register().Recipient())
	id := uploadTo(t, alice, ct)

	resp := openDownload(t, team, id)
	env.FlipSpoolBit(40 << 20)
	st, body := team.json(http.MethodPost, api.PathTransfer+id+api.PathIntegrityReport,
		api.IntegrityReport{Size: int64(len(ct)), SHA256: strings.Repeat("0", 64)})
	if st != http.StatusUnprocessableEntity || !strings.Contains(string(body), api.CodeHashMismatch) {
		t.Fatalf("report of a damaged transfer: %d %s, want 422 hash_mismatch", st, body)
	}
	assertCut(t, resp, int64(len(ct)))
	if st, b, _ := team.do(http.MethodGet, api.PathTransfer+id+"/content", nil, nil); st == http.StatusOK || len(b) > 4096 {
		t.Fatalf("download after the quarantine: %d, %d bytes", st, len(b))
	}
}
