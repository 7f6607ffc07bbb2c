package sftpfront_test

import (
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/audit"
)

// TestIdenticalReuploadAfterRestart: the finished uploads are kept in the
// store, so after a gateway restart the file is still listed in its outbox
// directory with its size, and an identical re-upload with OpenSSH's sftp is
// acknowledged (exit 0) without a second delivery; the re-upload is audited
// as duplicate_upload naming the transfer it repeats.
func TestIdenticalReuploadAfterRestart(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	src, _ := randomFile(t, dir, "statement.pdf", 300_001)
	put := "put " + src + " /outbox/team/\n"
	if out, err := f.sftp(t, put); err != nil {
		t.Fatalf("sftp put: %v\n%s", err, out)
	}
	first := inbox(t, f.team)
	if len(first) != 1 {
		t.Fatalf("after one put the team has %d deliveries, want 1", len(first))
	}

	f.env.Restart()
	f.kh = f.env.KnownHosts() // the front listens on a new port, with the same host key

	out, err := f.sftp(t, "ls -l /outbox/team/\n")
	if err != nil || !strings.Contains(out, "statement.pdf") || !strings.Contains(out, "300001") {
		t.Fatalf("after a restart the finished upload is not listed with its size: %v\n%s", err, out)
	}
	if out, err := f.sftp(t, put); err != nil {
		t.Fatalf("sftp put after a restart: %v\n%s", err, out)
	}
	if ts := inbox(t, f.team); len(ts) != 1 {
		t.Fatalf("an identical re-upload after a restart was delivered again: %d deliveries", len(ts))
	}
	var dups []audit.Event
	for _, ev := range f.env.AuditEvents() {
		if ev.Kind == audit.KindDuplicateUpload {
			dups = append(dups, ev)
		}
	}
	if len(dups) != 1 || dups[0].Transfer != first[0].ID || dups[0].Actor == "" {
		t.Fatalf("duplicate_upload audit entries = %+v; want one naming transfer %s", dups, first[0].ID)
	}
}
