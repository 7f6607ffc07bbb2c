package sftpfront_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// TestOpenSSHLimitsExtension: the stock OpenSSH sftp client learns the front's
// limits (limits@openssh.com, which pkg/sftp does not speak: the front answers
// it) and uploads in writes and downloads in reads of 255 KiB instead of
// 32 KiB: the upload arrives whole (the stored ciphertext decrypts to the
// file), and the download is the stored ciphertext, byte for byte, past the
// size checked before serving (so checked while served, from the check's
// window).
func TestOpenSSHLimitsExtension(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	src, data := randomFile(t, dir, "scan.pdf", 70<<20+5)
	out, err := f.sftp(t, "put "+src+" /outbox/self/\n", "-vvv")
	if err != nil {
		t.Fatalf("sftp put: %v\n%s", err, out)
	}
	if !strings.Contains(out, "server upload/download buffer sizes 261120 / 261120") &&
		!strings.Contains(out, "Using server upload size 261120") {
		t.Errorf("the sftp client did not take the front's write limit:\n%s", debugLines(out, "limit", "buffer", "size"))
	}
	ts := inbox(t, f.dms)
	if len(ts) != 1 {
		t.Fatalf("dms inbox holds %d transfers, want 1", len(ts))
	}
	local := filepath.Join(dir, "got.age")
	out, err = f.sftp(t, "get /inbox/"+sftpfront.InboxName(ts[0])+" "+local+"\n", "-vvv")
	if err != nil {
		t.Fatalf("sftp get: %v\n%s", err, out)
	}
	if !strings.Contains(out, "server upload/download buffer sizes 261120 / 261120") &&
		!strings.Contains(out, "Using server download size 261120") {
		t.Errorf("the sftp client did not take the front's limits:\n%s", debugLines(out, "limit", "buffer", "size"))
	}
	spool := f.env.SpoolFiles()
	if len(spool) != 1 {
		t.Fatalf("spool: %q", spool)
	}
	want, err := os.ReadFile(spool[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(local); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the download is not the stored ciphertext (%v, %d of %d bytes)", err, len(got), len(want))
	}
	if !bytes.Equal(ageDecrypt(t, local, f.dms), data) {
		t.Error("the upload, written in 255 KiB writes, does not decrypt to the file put")
	}
}

// debugLines keeps the lines of a verbose client's output that mention a word.
func debugLines(out string, words ...string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		for _, w := range words {
			if strings.Contains(strings.ToLower(l), w) {
				keep = append(keep, l)
				break
			}
		}
	}
	return strings.Join(keep, "\n")
}
