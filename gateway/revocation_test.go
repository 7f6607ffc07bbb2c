package gateway_test

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// PolicyAdmin is the administrator named in policies/data/access.json.
const PolicyAdmin = "spiffe://harbor-law.example/security/policy-admin"

// cutBound is how soon after a revoke the issue requires live connections
// to be closed. The gateway closes them before it answers the revoke, so
// the bound holds on a loaded machine too.
const cutBound = time.Second

func adminCall(t *testing.T, admin *apiClient, path string, in any, want int, out any) {
	t.Helper()
	st, b := admin.json(http.MethodPost, path, in)
	if st != want {
		t.Fatalf("POST %s: %d %s, want %d", path, st, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

// handshakeRefused reports whether a fresh connection as id is refused.
func handshakeRefused(t *testing.T, env *gatewaytest.Env, id string, overQUIC bool) bool {
	t.Helper()
	hc := httpClient(t, tlsFor(t, env, loadSVID(t, env, id)), overQUIC)
	resp, err := hc.Get("https://" + env.Addr + api.PathInbox)
	if err != nil {
		return true
	}
	resp.Body.Close()
	return false
}

// sftpDial logs in on the SFTP front as the DMS account.
func sftpDial(t *testing.T, env *gatewaytest.Env, key gatewaytest.SSHKey) (*ssh.Client, *sftp.Client, error) {
	t.Helper()
	pemKey, err := os.ReadFile(key.Private)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(env.Gateway.SFTP().HostPublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ssh.Dial("tcp", env.SFTPAddr(), &ssh.ClientConfig{User: gatewaytest.DMSAccount,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 10 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	c, err := sftp.NewClient(sc)
	if err != nil {
		sc.Close()
		return nil, nil, err
	}
	return sc, c, nil
}

// TestRevokeAtRunTime: an admin revokes an identity over the API; its
// upload in flight (HTTPS, then HTTP/3) is cut at once and its next
// handshake refused; an SFTP session of an account acting as a revoked
// identity is closed; the revocation survives a restart; unrevoke restores
// access; every step is an audit entry.
func TestRevokeAtRunTime(t *testing.T) {
	key := gatewaytest.NewSSHKey(t, t.TempDir(), "dms_ed25519")
	env := gatewaytest.Start(t, gatewaytest.WithSFTP(map[string]string{"team": gatewaytest.Team},
		sftpfront.Account{Name: gatewaytest.DMSAccount, ID: gatewaytest.DMS, AuthorizedKeys: []string{key.Authorized}, Matter: "HL-2026-0042"}))
	env.AddIdentity(PolicyAdmin)
	admin := newAPIClient(t, env, PolicyAdmin, false)

	// Not an admin: refused, and audited as a refusal.
	alice0 := newAPIClient(t, env, gatewaytest.Alice, false)
	if st, b := alice0.json(http.MethodPost, api.PathAdminRevocations, api.RevokeRequest{ID: gatewaytest.Team, Reason: "test"}); st != http.StatusForbidden {
		t.Fatalf("revoke by a non-admin: %d %s, want 403", st, b)
	}

	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			alice := newAPIClient(t, env, gatewaytest.Alice, tr.quic)
			team := newAPIClient(t, env, gatewaytest.Team, tr.quic)
			ct := encrypt(t, make([]byte, 8<<20), team.register().Recipient())
			st, xfer, e := alice.create([]string{gatewaytest.Team}, nil, ct, nil)
			if st != http.StatusCreated {
				t.Fatalf("create: %d %+v", st, e)
			}
			pw, done := slowUpload(alice, xfer.ID, 0)
			defer pw.Close()
			if _, err := pw.Write(ct[:1<<20]); err != nil { // the upload is under way
				t.Fatal(err)
			}
			var rev api.Revocation
			adminCall(t, admin, api.PathAdminRevocations, api.RevokeRequest{ID: gatewaytest.Alice, Reason: "laptop stolen"}, http.StatusCreated, &rev)
			answered := time.Now()
			if rev.ClosedConnections < 1 {
				t.Errorf("revoke closed %d connections, want at least the upload's", rev.ClosedConnections)
			}
			go pw.Write(ct[1<<20:]) // a writer blocked on a dead connection is not the signal
			select {
			case st := <-done:
				if st != 0 && st < 400 {
					t.Errorf("upload after the revoke: status %d, want it cut", st)
				}
			case <-time.After(cutBound):
				t.Fatalf("upload still running %v after the revoke was answered", cutBound)
			}
			t.Logf("upload cut %v after the revoke's answer", time.Since(answered))
			if !handshakeRefused(t, env, gatewaytest.Alice, tr.quic) {
				t.Error("a revoked identity completed a new handshake")
			}
			adminCall(t, admin, api.PathAdminUnrevoke, api.RevokeRequest{ID: gatewaytest.Alice, Reason: "laptop found"}, http.StatusOK, nil)
			if handshakeRefused(t, env, gatewaytest.Alice, tr.quic) {
				t.Error("unrevoke did not restore access")
			}
		})
	}

	t.Run("sftp", func(t *testing.T) {
		sc, c, err := sftpDial(t, env, key)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		if _, err := c.ReadDir("/"); err != nil {
			t.Fatalf("sftp before the revoke: %v", err)
		}
		closed := make(chan error, 1)
		go func() { closed <- sc.Wait() }()
		adminCall(t, admin, api.PathAdminRevocations, api.RevokeRequest{ID: gatewaytest.DMS, Reason: "DMS compromised"}, http.StatusCreated, nil)
		select {
		case <-closed:
		case <-time.After(cutBound):
			t.Fatalf("SFTP session still open %v after the revoke was answered", cutBound)
		}
		if _, err := c.ReadDir("/"); err == nil {
			t.Error("sftp still works after the revoke")
		}
		if sc2, _, err := sftpDial(t, env, key); err == nil {
			sc2.Close()
			t.Error("a revoked account started a new SFTP session")
		}
	})

	adminCall(t, admin, api.PathAdminRevocations, api.RevokeRequest{ID: gatewaytest.Alice, Reason: "left the firm"}, http.StatusCreated, nil)
	env.Restart()
	if !handshakeRefused(t, env, gatewaytest.Alice, false) || !handshakeRefused(t, env, gatewaytest.Alice, true) {
		t.Fatal("the revocation did not survive a restart")
	}
	admin = newAPIClient(t, env, PolicyAdmin, false)
	var list api.RevocationList
	if st, b := admin.json(http.MethodGet, api.PathAdminRevocations, nil); st != http.StatusOK || json.Unmarshal(b, &list) != nil {
		t.Fatalf("list: %d %s", st, b)
	}
	var ids []string
	for _, r := range list.Revocations {
		ids = append(ids, r.ID+" "+r.Source)
	}
	if want := []string{gatewaytest.DMS + " admin", gatewaytest.Alice + " admin"}; !slices.Equal(ids, want) {
		t.Errorf("revocations after restart: %q, want %q", ids, want)
	}
	adminCall(t, admin, api.PathAdminUnrevoke, api.RevokeRequest{ID: gatewaytest.Alice, Reason: "rehired"}, http.StatusOK, nil)
	if handshakeRefused(t, env, gatewaytest.Alice, false) {
		t.Error("unrevoke after a restart did not restore access")
	}

	var steps []string
	for _, ev := range env.AuditEvents() {
		if ev.Kind == audit.KindAdmin && ev.Actor == PolicyAdmin {
			steps = append(steps, ev.Action+" "+ev.Subject)
		}
	}
	a, d := gatewaytest.Alice, gatewaytest.DMS
	want := []string{"admin.revoke " + a, "admin.unrevoke " + a, "admin.revoke " + a, "admin.unrevoke " + a,
		"admin.revoke " + d, "admin.revoke " + a, "admin.unrevoke " + a}
	if !slices.Equal(steps, want) {
		t.Errorf("admin audit entries:\n got %q\nwant %q", steps, want)
	}
	refused := false
	for _, ev := range env.AuditEvents() {
		if ev.Actor == gatewaytest.Alice && ev.Action == "admin" && ev.Decision != nil && !ev.Decision.Allow {
			refused = true
		}
	}
	if !refused {
		t.Error("the non-admin's revoke attempt is not in the audit log")
	}
}

// TestConfigRevocationsMerged: config-file revocations are listed beside
// run-time ones and cannot be lifted over the API.
func TestConfigRevocationsMerged(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithRevoked(gatewaytest.Team))
	env.AddIdentity(PolicyAdmin)
	admin := newAPIClient(t, env, PolicyAdmin, false)
	adminCall(t, admin, api.PathAdminRevocations, api.RevokeRequest{ID: gatewaytest.DMS, Reason: "rotating"}, http.StatusCreated, nil)
	var list api.RevocationList
	st, b := admin.json(http.MethodGet, api.PathAdminRevocations, nil)
	if st != http.StatusOK || json.Unmarshal(b, &list) != nil {
		t.Fatalf("list: %d %s", st, b)
	}
	var got []string
	for _, r := range list.Revocations {
		got = append(got, r.ID+" "+r.Source)
	}
	if want := []string{gatewaytest.DMS + " admin", gatewaytest.Team + " config"}; !slices.Equal(got, want) {
		t.Errorf("revocations %q, want %q", got, want)
	}
	if st, b := admin.json(http.MethodPost, api.PathAdminUnrevoke, api.RevokeRequest{ID: gatewaytest.Team, Reason: "x"}); st != http.StatusBadRequest {
		t.Errorf("unrevoke of a config revocation: %d %s, want 400", st, b)
	}
}
