package sftpfront_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// TestOpenSSHGetOfCorruptedDelivery: a delivery large enough to be checked
// while it is served (past the inline check), with one bit flipped on disk
// after it was stored, is never served whole to the stock OpenSSH sftp
// client: the get fails without the last MiB, the transfer is quarantined and
// the quarantine audited, and a second get is refused.
func TestOpenSSHGetOfCorruptedDelivery(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	src, _ := randomFile(t, dir, "ledger.xlsx", 70<<20)
	if out, err := f.sftp(t, "put "+src+" /outbox/self/\n"); err != nil {
		t.Fatalf("sftp put: %v\n%s", err, out)
	}
	ts := inbox(t, f.dms)
	if len(ts) != 1 {
		t.Fatalf("dms inbox holds %d transfers, want 1", len(ts))
	}
	f.env.FlipSpoolBit(5 << 20)

	name := "/inbox/" + sftpfront.InboxName(ts[0])
	local := filepath.Join(dir, "got.age")
	if out, err := f.sftp(t, "get "+name+" "+local+"\n"); err == nil {
		t.Fatalf("sftp get of a corrupted delivery succeeded:\n%s", out)
	}
	if fi, err := os.Stat(local); err == nil && fi.Size() >= ts[0].CiphertextSize-(1<<20) {
		t.Fatalf("a corrupted delivery was served up to byte %d of %d; its last MiB must be held back", fi.Size(), ts[0].CiphertextSize)
	}
	deadline := time.Now().Add(time.Minute)
	for f.env.StoreStats().Quarantined != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the corrupted transfer was not quarantined")
		}
		time.Sleep(20 * time.Millisecond)
	}
	found := false
	for _, ev := range f.env.AuditEvents() {
		found = found || ev.Kind == audit.KindQuarantined && ev.Transfer == ts[0].ID
	}
	if !found {
		t.Error("the quarantine found at delivery is not in the audit log")
	}
	os.Remove(local)
	if out, err := f.sftp(t, "get "+name+" "+local+"\n"); err == nil {
		t.Fatalf("sftp get after the quarantine succeeded:\n%s", out)
	}
}

// TestOpenSSHGetCutByQuarantine: a stock OpenSSH sftp get under way (held
// to about 5 MB/s by its own -l, so the 48 MiB take seconds) stops when an
// admin quarantines the transfer: the get fails short of the end, and a
// second get is refused.
func TestOpenSSHGetCutByQuarantine(t *testing.T) {
	f := start(t)
	const admin = "spiffe://harbor-law.example/security/policy-admin"
	f.env.AddIdentity(admin)
	adminConfig := f.env.ClientConfig(admin)
	dir := t.TempDir()
	src, _ := randomFile(t, dir, "ledger.xlsx", 48<<20)
	if out, err := f.sftp(t, "put "+src+" /outbox/self/\n"); err != nil {
		t.Fatalf("sftp put: %v\n%s", err, out)
	}
	ts := inbox(t, f.dms)
	if len(ts) != 1 {
		t.Fatalf("dms inbox holds %d transfers, want 1", len(ts))
	}
	name := "/inbox/" + sftpfront.InboxName(ts[0])
	local := filepath.Join(dir, "got.age")
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := f.sftp(t, "get "+name+" "+local+"\n", "-l", "40000")
		done <- result{out, err}
	}()
	for {
		if fi, err := os.Stat(local); err == nil && fi.Size() >= 1<<20 {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("sftp get ended before the quarantine: %v\n%s", r.err, r.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	mustLex(t, adminConfig, "admin", "quarantine", "--transfer", ts[0].ID, "--reason", "misdirected send")
	r := <-done
	fi, err := os.Stat(local)
	if r.err == nil || err != nil || fi.Size() >= ts[0].CiphertextSize {
		t.Fatalf("sftp get went on after the quarantine: %v, %v bytes of %d\n%s", r.err, fi.Size(), ts[0].CiphertextSize, r.out)
	}
	os.Remove(local)
	if out, err := f.sftp(t, "get "+name+" "+local+"\n"); err == nil {
		t.Fatalf("sftp get after the quarantine succeeded:\n%s", out)
	}
}
