package sftpfront_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// TestCustodialInbox: an account with custodial_inbox gets deliveries
// decrypted by the gateway. The team sends it a bundle with lex send (to the
// key the gateway registered for it) and it uploads a file to itself; the
// stock sftp client lists both in /inbox without .age and gets the plaintext:
// the file byte for byte, the bundle as its tar. The identity is sealed at rest
// (no age secret key in the file, 0600) and survives a restart.
func TestCustodialInbox(t *testing.T) {
	f := start(t, func(a *sftpfront.Account) { a.CustodialInbox = true })
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o700)
	_, memo := randomFile(t, bundle, "memo.txt", 70_000)
	mustLex(t, f.team, "send", "--to", gatewaytest.DMS, "--matter", matter, bundle)
	src, report := randomFile(t, dir, "report.pdf", 3<<20+5)
	if out, err := f.sftp(t, "put "+src+" /outbox/self/\n"); err != nil {
		t.Fatalf("sftp put: %v\n%s", err, out)
	}

	get := func() {
		t.Helper()
		out, err := f.sftp(t, "ls -1 /inbox\n")
		if err != nil {
			t.Fatalf("sftp ls: %v\n%s", err, out)
		}
		var file, tarball string
		for _, l := range strings.Fields(out) {
			switch {
			case strings.HasSuffix(l, "-report.pdf"):
				file = l
			case strings.HasSuffix(l, ".tar"):
				tarball = l
			case strings.HasSuffix(l, ".age"):
				t.Errorf("a custodial inbox lists ciphertext: %s", l)
			}
		}
		if file == "" || tarball == "" {
			t.Fatalf("/inbox does not list both deliveries decrypted:\n%s", out)
		}
		local := t.TempDir()
		if out, err := f.sftp(t, "get "+file+" "+local+"/file\nget "+tarball+" "+local+"/bundle.tar\n"); err != nil {
			t.Fatalf("sftp get: %v\n%s", err, out)
		}
		if got, _ := os.ReadFile(filepath.Join(local, "file")); !bytes.Equal(got, report) {
			t.Errorf("the decrypted upload differs from the file put (%d vs %d bytes)", len(got), len(report))
		}
		tb, _ := os.ReadFile(filepath.Join(local, "bundle.tar"))
		if !tarHolds(t, tb, "memo.txt", memo) {
			t.Error("the decrypted bundle does not hold memo.txt with the bytes sent")
		}
	}
	get()

	sealed, err := filepath.Glob(filepath.Join(f.env.Config.Store.Dir, "sftp_custody", "*"))
	if err != nil || len(sealed) != 1 {
		t.Fatalf("sealed identities: %v %v", sealed, err)
	}
	b, _ := os.ReadFile(sealed[0])
	if bytes.Contains(b, []byte("AGE-SECRET-KEY")) {
		t.Error("the custodial identity is stored in the clear")
	}
	if fi, _ := os.Stat(sealed[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("sealed identity mode %v, want 0600", fi.Mode().Perm())
	}

	f.env.Restart()
	f.kh = f.env.KnownHosts()
	get() // the same identity, unsealed again
	if !strings.Contains(f.env.Logs(), "custodial inbox") {
		t.Error("the gateway does not log that it holds a custodial identity")
	}
}
