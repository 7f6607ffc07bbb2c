package gateway_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// sftpTo connects an SFTP client (pkg/sftp over x/crypto/ssh) to env's
// front as the DMS account with key, pinning its host key (sftpDial), and
// closes it when the test ends.
func sftpTo(t *testing.T, env *gatewaytest.Env, key gatewaytest.SSHKey) *sftp.Client {
	t.Helper()
	sc, fc, err := sftpDial(t, env, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close(); sc.Close() })
	return fc
}

// TestClusterSFTPIdenticalUpload: two replicas on one PostgreSQL store share
// the SFTP front's finished uploads. The same file uploaded through each at
// once (both closed together, as an rclone retry reconnecting to the other
// replica may) is delivered once; both replicas list it with its size, a
// time set through one shows on the other, and a later identical upload
// through the second is not delivered either. Each re-upload is audited as
// duplicate_upload naming the one transfer.
func TestClusterSFTPIdenticalUpload(t *testing.T) {
	c := startCluster(t)
	key := gatewaytest.NewSSHKey(t, t.TempDir(), "dms_ed25519")
	withSFTP := gatewaytest.WithSFTP(map[string]string{"team": gatewaytest.Team},
		sftpfront.Account{Name: gatewaytest.DMSAccount, ID: gatewaytest.DMS, AuthorizedKeys: []string{key.Authorized}, Matter: "HL-2026-0042"})
	r1 := gatewaytest.Start(t, c.replica("r1"), withSFTP)
	r2 := r1.StartReplica(t, c.replica("r2"), withSFTP)
	team := newAPIClient(t, r1, gatewaytest.Team, false)
	team.register()
	clients := []*sftp.Client{sftpTo(t, r1, key), sftpTo(t, r2, key)}

	pt := make([]byte, 1<<20+5)
	rand.Read(pt)
	const path = "/outbox/team/brief.pdf"
	upload := func(fc *sftp.Client, ready, closeNow *sync.WaitGroup) error {
		f, err := fc.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			return err
		}
		if _, err := f.Write(pt); err != nil {
			f.Close()
			return err
		}
		if ready != nil {
			ready.Done()
			closeNow.Wait()
		}
		return f.Close() // the upload's end: the front seals it here
	}
	var ready, closeNow, done sync.WaitGroup
	errs := make([]error, len(clients))
	ready.Add(len(clients))
	closeNow.Add(1)
	for i, fc := range clients {
		done.Go(func() { errs[i] = upload(fc, &ready, &closeNow) })
	}
	ready.Wait()
	closeNow.Done()
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("upload through r%d: %v", i+1, err)
		}
	}
	inbox := func() []api.Transfer {
		t.Helper()
		st, b, _ := team.do(http.MethodGet, api.PathInbox, nil, nil)
		var in struct {
			Transfers []api.Transfer `json:"transfers"`
		}
		if err := json.Unmarshal(b, &in); st != http.StatusOK || err != nil {
			t.Fatalf("inbox: %d %s (%v)", st, b, err)
		}
		return in.Transfers
	}
	ts := inbox()
	if len(ts) != 1 {
		t.Fatalf("identical uploads through two replicas at once made %d deliveries, want 1", len(ts))
	}

	mod := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := clients[1].Chtimes(path, mod, mod); err != nil {
		t.Fatalf("set times through r2: %v", err)
	}
	for i, fc := range clients {
		fis, err := fc.ReadDir("/outbox/team")
		if err != nil || len(fis) != 1 || fis[0].Name() != "brief.pdf" || fis[0].Size() != int64(len(pt)) || !fis[0].ModTime().Equal(mod) {
			t.Errorf("r%d lists /outbox/team as %v (%v); want brief.pdf, %d bytes, at %s", i+1, fis, err, len(pt), mod)
		}
	}

	if err := upload(clients[1], nil, nil); err != nil {
		t.Fatalf("a later identical upload through r2: %v", err)
	}
	if ts := inbox(); len(ts) != 1 {
		t.Fatalf("a later identical upload through r2 was delivered again: %d deliveries", len(ts))
	}
	n := 0
	for _, ev := range c.events(t, spiffeid.RequireFromString(gatewaytest.GatewayID).TrustDomain().Name()+"/lexgate-audit") {
		if ev.Kind != audit.KindDuplicateUpload {
			continue
		}
		n++
		if ev.Transfer != ts[0].ID || ev.Actor != gatewaytest.DMS {
			t.Errorf("duplicate_upload entry %+v; want one naming transfer %s by %s", ev, ts[0].ID, gatewaytest.DMS)
		}
	}
	if n != 2 {
		t.Errorf("%d duplicate_upload audit entries, want 2 (the one that lost the race, the later one)", n)
	}
}
