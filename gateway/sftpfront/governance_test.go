package sftpfront_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
	"github.com/lexgate/lexgate/gateway/transfer"
)

// Issue 14 over SFTP: the download limit holds on /inbox gets, and an upload
// is decided again with its final size before it is sealed.

// startGoverned is start with the shipped policies and harbor-law's data
// changed by org (gatewaytest.PolicyDir).
func startGoverned(t *testing.T, org map[string]any, opts ...func(*sftpfront.Account)) *front {
	t.Helper()
	return startPatched(t, func(file string, doc map[string]any) {
		if file != "organisations.json" {
			return
		}
		rec := doc["organisations"].(map[string]any)["harbor-law.example"].(map[string]any)
		for k, v := range org {
			rec[k] = v
		}
	}, opts...)
}

// startPatched is start with the shipped policies changed by patch.
func startPatched(t *testing.T, patch func(string, map[string]any), opts ...func(*sftpfront.Account)) *front {
	t.Helper()
	dir := gatewaytest.PolicyDir(t, patch)
	tmp := t.TempDir()
	key := gatewaytest.NewSSHKey(t, tmp, "dms_ed25519")
	acct := sftpfront.Account{Name: gatewaytest.DMSAccount, ID: gatewaytest.DMS, AuthorizedKeys: []string{key.Authorized}, Matter: matter}
	for _, o := range opts {
		o(&acct)
	}
	env := gatewaytest.Start(t, gatewaytest.WithPolicyDir(dir),
		gatewaytest.WithSFTP(map[string]string{"team": gatewaytest.Team}, acct))
	f := &front{env: env, key: key, team: env.ClientConfig(gatewaytest.Team), dms: env.ClientConfig(gatewaytest.DMS), kh: env.KnownHosts()}
	for _, c := range []string{f.team, f.dms} {
		mustLex(t, c, "keygen")
		if c == f.dms && acct.CustodialInbox {
			continue // the gateway registered the custodial identity's key
		}
		mustLex(t, c, "register")
	}
	return f
}

func auditRefused(evs []audit.Event, code string) bool {
	for _, ev := range evs {
		if ev.Kind == audit.KindDecision && ev.Decision != nil && !ev.Decision.Allow && slices.Contains(ev.Decision.Reasons, code) {
			return true
		}
	}
	return false
}

// TestSFTPDownloadLimit: with max_downloads 2 the third OpenSSH get of a
// delivery is refused, and the refusal is audited with its reason.
func TestSFTPDownloadLimit(t *testing.T) {
	f := startGoverned(t, map[string]any{"max_downloads": 2})
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o700)
	randomFile(t, bundle, "memo.txt", 20_000)
	mustLex(t, f.team, "send", "--to", gatewaytest.DMS, "--matter", matter, bundle)
	ts := inbox(t, f.dms)
	if len(ts) != 1 {
		t.Fatalf("dms inbox holds %d transfers, want 1", len(ts))
	}
	name := sftpfront.InboxName(ts[0])
	for i := 1; i <= 2; i++ {
		if out, err := f.sftp(t, "get /inbox/"+name+" "+filepath.Join(dir, "copy.age")+"\n"); err != nil {
			t.Fatalf("get %d: %v\n%s", i, err, out)
		}
	}
	out, err := f.sftp(t, "get /inbox/"+name+" "+filepath.Join(dir, "third.age")+"\n")
	if err == nil {
		t.Fatalf("the third get succeeded:\n%s", out)
	}
	t.Logf("sftp said: %s", strings.TrimSpace(out))
	if !auditRefused(f.env.AuditEvents(), transfer.CodeDownloadLimit) {
		t.Error("the refused get is not in the audit log with " + transfer.CodeDownloadLimit)
	}
}

// TestSFTPUploadOverSizeLimit: an upload over the organisation's
// max_bundle_bytes is refused once its real size is known, nothing is kept,
// and the refusal is audited.
func TestSFTPUploadOverSizeLimit(t *testing.T) {
	f := startGoverned(t, map[string]any{"max_bundle_bytes": 100_000})
	dir := t.TempDir()
	small, _ := randomFile(t, dir, "small.bin", 50_000)
	big, _ := randomFile(t, dir, "big.bin", 300_000)
	if out, err := f.sftp(t, "put "+big+" /outbox/team/big.bin\n"); err == nil {
		t.Fatalf("an upload over the size limit succeeded:\n%s", out)
	}
	if ts := inbox(t, f.team); len(ts) != 0 {
		t.Errorf("a transfer was stored: %+v", ts[0])
	}
	if files := f.env.SpoolFiles(); len(files) != 0 {
		t.Errorf("spool holds %v", files)
	}
	var refused bool
	for _, ev := range f.env.AuditEvents() {
		refused = refused || ev.Kind == audit.KindDecision && ev.Action == "send" && ev.Actor == gatewaytest.DMS &&
			ev.Decision != nil && !ev.Decision.Allow
	}
	if !refused {
		t.Error("the refused upload is not in the audit log")
	}
	// Under the limit the same account's upload goes through.
	if out, err := f.sftp(t, "put "+small+" /outbox/team/small.bin\n"); err != nil {
		t.Fatalf("upload under the limit: %v\n%s", err, out)
	}
	if ts := inbox(t, f.team); len(ts) != 1 {
		t.Errorf("team inbox holds %d transfers, want 1", len(ts))
	}
}

// TestCustodialCertificate: the destruction certificate of a transfer to a
// custodial account says that the gateway held a key that could decrypt it.
func TestCustodialCertificate(t *testing.T) {
	f := startPatched(t, func(file string, doc map[string]any) {
		if file == "matters.json" {
			doc["matters"].(map[string]any)[matter].(map[string]any)["retention_seconds"] = 1
		}
	}, func(a *sftpfront.Account) { a.CustodialInbox = true })
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o700)
	randomFile(t, bundle, "memo.txt", 20_000)
	mustLex(t, f.team, "send", "--to", gatewaytest.DMS, "--matter", matter, bundle)
	ts := inbox(t, f.dms)
	if len(ts) != 1 || ts[0].Obligations == nil {
		t.Fatalf("dms inbox: %+v", ts)
	}
	wait := time.Until(ts[0].Obligations.ExpiresAt)
	if wait > 30*time.Second {
		t.Fatalf("expires in %v: retention_seconds did not apply", wait)
	}
	time.Sleep(wait + 10*time.Millisecond) // the expiry is a point in time, not an event
	if r, err := f.env.Gateway.Sweep(t.Context()); err != nil || r.Destroyed != 1 {
		t.Fatalf("sweep: %+v, %v", r, err)
	}
	out := mustLex(t, f.team, "certificate", "get", ts[0].ID, "-o", filepath.Join(dir, "cert.json"))
	if !strings.Contains(out, "gateway held a decryption key: YES") || !strings.Contains(out, gatewaytest.DMS) {
		t.Errorf("certificate of a custodial delivery:\n%s", out)
	}
}
