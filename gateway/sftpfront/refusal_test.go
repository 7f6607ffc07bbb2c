package sftpfront_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// TestRefusals: each request the front must refuse, through the real OpenSSH
// sftp client: the client fails, nothing is stored (no transfer, no spool or
// staged file), and the audit log records the refusal with its reason code.
func TestRefusals(t *testing.T) {
	f := start(t, func(a *sftpfront.Account) { a.MaxUploadSize = 1 << 20 })
	dir := t.TempDir()
	small, _ := randomFile(t, dir, "small.bin", 1000)
	big, _ := randomFile(t, dir, "big.bin", 2<<20)
	long := strings.Repeat("n", 300)
	for _, tc := range []struct {
		name, batch, audit string
	}{
		{"outside the tree", "put " + small + " /etc/passwd", "sftp.outside_tree"},
		{"dot-dot escape", "put " + small + " /outbox/team/../../../etc/x", "sftp.outside_tree"},
		{"write to inbox", "put " + small + " /inbox/x.age", "sftp.read_only"},
		{"symlink", "symlink /outbox/team/a /outbox/team/b", "sftp.link"},
		{"hard link", "ln /outbox/team/a /outbox/team/b", "sftp.link"},
		{"chmod", "chmod 777 /outbox/team", "sftp.setstat"},
		{"chown", "chown 0 /inbox", "sftp.setstat"},
		{"mkdir", "mkdir /outbox/new", "sftp.unsupported"},
		{"rename", "rename /outbox/team /outbox/x", "sftp.unsupported"},
		{"control character", "put " + small + " \"/outbox/team/a\tb\"", "sftp.bad_name"},
		{"name over 255 bytes", "put " + small + " /outbox/team/" + long, "sftp.bad_name"},
		{"over the size limit", "put " + big + " /outbox/team/big.bin", "exceeds the limit"},
		{"policy: unknown organisation", "put " + small + " /outbox/evil.example+x/y", "\"sftp_write\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := f.sftp(t, tc.batch+"\n")
			if err == nil {
				t.Fatalf("sftp succeeded, want a refusal:\n%s", out)
			}
			t.Logf("sftp said: %s", strings.TrimSpace(out))
			if ts := inbox(t, f.team); len(ts) != 0 {
				t.Errorf("a transfer was stored: %+v", ts[0])
			}
			if files := f.env.SpoolFiles(); len(files) != 0 {
				t.Errorf("spool holds %v", files)
			}
			if tc.audit != "\"sftp_write\"" && tc.audit != "exceeds the limit" {
				waitAudit(t, f.env, tc.audit)
			}
		})
	}
	// The policy refusal and the size limit leave their own traces.
	waitAudit(t, f.env, "evil.example")
	if !strings.Contains(f.env.Logs(), "exceeds the limit") {
		t.Error("the gateway did not log the upload over the size limit")
	}
}

// TestUnknownKeyRefused: a key the account does not authorize does not log in.
func TestUnknownKeyRefused(t *testing.T) {
	f := start(t)
	other := gatewaytest.NewSSHKey(t, t.TempDir(), "stranger")
	f.key = other
	if out, err := f.sftp(t, "ls /\n"); err == nil {
		t.Fatalf("a key not authorized for the account logged in:\n%s", out)
	}
}

// TestKilledUploadLeavesNothing: an OpenSSH sftp put of 100 MiB killed halfway
// and not resumed within sftp.upload_window leaves no transfer and no staged
// file.
func TestKilledUploadLeavesNothing(t *testing.T) {
	f := startFront(t, func(c *sftpfront.Config) { c.UploadWindow = time.Second })
	dir := t.TempDir()
	src, _ := randomFile(t, dir, "large.bin", 100<<20)
	need(t, "sftp")
	_, port, _ := strings.Cut(f.env.SFTPAddr(), ":")
	args := append([]string{"-b", "-", "-P", port}, f.sshOpts()...)
	cmd := exec.CommandContext(t.Context(), "sftp", append(args, gatewaytest.DMSAccount+"@127.0.0.1")...)
	cmd.Stdin = strings.NewReader("put " + src + " /outbox/team/large.bin\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // kill ssh too
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until a good part of the upload is staged, then kill the client.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if n := stagedBytes(f.env); n > 30<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload never got going")
		}
		time.Sleep(5 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	deadline = time.Now().Add(60 * time.Second)
	for len(f.env.SpoolFiles()) != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if files := f.env.SpoolFiles(); len(files) != 0 {
		t.Errorf("after the kill the spool holds %v", files)
	}
	if ts := inbox(t, f.team); len(ts) != 0 {
		t.Errorf("a killed upload became a transfer: %+v", ts[0])
	}
	if !strings.Contains(f.env.Logs(), "not resumed within sftp.upload_window") {
		t.Error("the front did not log that it discarded the interrupted upload")
	}
}

func stagedBytes(env *gatewaytest.Env) int64 {
	var n int64
	for _, p := range env.SpoolFiles() {
		if fi, err := os.Stat(p); err == nil && strings.Contains(filepath.ToSlash(p), "/staging/") {
			n += fi.Size()
		}
	}
	return n
}
