package sftpfront_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// Stock clients on their default settings (issue 17): rclone, paramiko, curl
// (libssh2), OpenSSH and lftp, each against the front's default algorithms.

// port is the SFTP front's port.
func (f *front) port() string {
	_, port, _ := strings.Cut(f.env.SFTPAddr(), ":")
	return port
}

// rclone runs rclone with args and no config file; remote paths are given as
// rclone's on-the-fly sftp remote (f.remote).
func (f *front) rclone(t testing.TB, args ...string) (string, error) {
	t.Helper()
	need(t, "rclone")
	cmd := exec.CommandContext(t.Context(), "rclone", args...)
	cmd.Env = append(os.Environ(), "RCLONE_CONFIG="+filepath.Join(t.TempDir(), "rclone.conf"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// remote is p on the front as an rclone remote with default sftp settings
// (only where to connect and which key and known_hosts to use).
func (f *front) remote(p string) string {
	return fmt.Sprintf(":sftp,host=127.0.0.1,port=%s,user=%s,key_file=%s,known_hosts_file=%s:%s",
		f.port(), gatewaytest.DMSAccount, f.key.Private, f.kh, p)
}

// TestRcloneCopy: rclone copyto and copy, each run twice with default
// settings: exit 0 every time and exactly one delivery per file. rclone sets
// the modification time after the upload and reads it back (the file must stay
// listed, the time kept); its second run compares size and time and skips, or
// re-uploads identical content, which is not delivered again.
func TestRcloneCopy(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	src, want := randomFile(t, dir, "ledger.pdf", 3<<20+17)
	for run := range 2 {
		if out, err := f.rclone(t, "copyto", src, f.remote("/outbox/team/ledger.pdf")); err != nil {
			t.Fatalf("rclone copyto, run %d: %v\n%s", run+1, err, out)
		}
	}
	if ts := inbox(t, f.team); len(ts) != 1 {
		t.Fatalf("after two rclone copyto the team has %d deliveries, want 1", len(ts))
	}
	folder := filepath.Join(dir, "folder")
	os.Mkdir(folder, 0o700)
	randomFile(t, folder, "a.txt", 1000)
	randomFile(t, folder, "b.bin", 700_000)
	for run := range 2 {
		if out, err := f.rclone(t, "copy", folder, f.remote("/outbox/team")); err != nil {
			t.Fatalf("rclone copy, run %d: %v\n%s", run+1, err, out)
		}
	}
	ts := inbox(t, f.team)
	if len(ts) != 3 {
		t.Fatalf("after two rclone copy of 2 files the team has %d deliveries, want 3 in all", len(ts))
	}
	recv := filepath.Join(dir, "received")
	for _, tr := range ts {
		mustLex(t, f.team, "receive", tr.ID, "-o", recv)
	}
	if got, err := os.ReadFile(filepath.Join(recv, "ledger.pdf")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("ledger.pdf received differs from the one copied (err %v)", err)
	}
	// The listing rclone compared against: sizes and the times it set.
	out, err := f.rclone(t, "lsl", f.remote("/outbox/team"))
	if err != nil || !strings.Contains(out, "ledger.pdf") || !strings.Contains(out, "a.txt") {
		t.Errorf("rclone lsl of /outbox/team: %v\n%s", err, out)
	}
	fi, _ := os.Stat(src)
	if !strings.Contains(out, fi.ModTime().Format("2006-01-02 15:04:05")) {
		t.Errorf("rclone lsl does not show the time rclone set on ledger.pdf (%s):\n%s", fi.ModTime(), out)
	}
}

// python finds a Python 3 with paramiko (Debian's python3-paramiko is for
// /usr/bin/python3, which a python3 earlier on PATH may hide).
func python(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import paramiko").Run() == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no python3 with paramiko (make deb-deps installs python3-paramiko)")
	}
	t.Skip("no python3 with paramiko (make deb-deps installs python3-paramiko)")
	return ""
}

// paramikoScript puts argv[1] as argv[2] with confirm=True (paramiko's
// default), stats it, then lists its directory. It pins the host key and
// leaves every algorithm at paramiko's defaults.
const paramikoScript = `
import sys, paramiko
host, port, user, key, kh, local, remote = sys.argv[1:8]
c = paramiko.SSHClient()
c.load_host_keys(kh)
c.set_missing_host_key_policy(paramiko.RejectPolicy())
c.connect(host, port=int(port), username=user, key_filename=key, look_for_keys=False, allow_agent=False)
t = c.get_transport()
print("cipher", t.remote_cipher, "mac", t.remote_mac)
s = c.open_sftp()
a = s.put(local, remote)
print("put", a.st_size)
st = s.stat(remote)
print("stat", st.st_size, st.st_mtime)
s.close()
c.close()
`

// TestParamikoPut: paramiko's put() (confirm=True: it stats the file after
// closing it) on the front's default algorithms succeeds, once, and the stat
// gives the size.
func TestParamikoPut(t *testing.T) {
	py := python(t)
	f := start(t)
	dir := t.TempDir()
	src, want := randomFile(t, dir, "statement.csv", 1<<20+3)
	script := filepath.Join(dir, "put.py")
	os.WriteFile(script, []byte(paramikoScript), 0o600)
	out, err := exec.CommandContext(t.Context(), py, script, "127.0.0.1", f.port(), gatewaytest.DMSAccount,
		f.key.Private, f.kh, src, "/outbox/team/statement.csv").CombinedOutput()
	if err != nil {
		t.Fatalf("paramiko put: %v\n%s", err, out)
	}
	t.Logf("paramiko: %s", out)
	if !strings.Contains(string(out), fmt.Sprintf("stat %d", len(want))) {
		t.Errorf("paramiko's stat does not give the size put:\n%s", out)
	}
	ts := inbox(t, f.team)
	if len(ts) != 1 {
		t.Fatalf("team has %d deliveries, want 1", len(ts))
	}
	recv := filepath.Join(dir, "received")
	mustLex(t, f.team, "receive", ts[0].ID, "-o", recv)
	if got, _ := os.ReadFile(filepath.Join(recv, "statement.csv")); !bytes.Equal(got, want) {
		t.Error("the file received differs from the one paramiko put")
	}
}

// curl runs curl (libssh2) on sftp:// URLs of the front with the account's key
// pair and the host key pinned by its SHA-256.
func (f *front) curl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	need(t, "curl")
	if out, _ := exec.Command("curl", "-V").Output(); !bytes.Contains(out, []byte("sftp")) {
		t.Fatalf("this curl has no sftp support:\n%s", out)
	}
	pub := f.key.Private + ".pub"
	if err := os.WriteFile(pub, []byte(f.key.Authorized+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fp := strings.TrimPrefix(f.env.Gateway.SFTP().Fingerprint(), "SHA256:")
	base := []string{"--silent", "--show-error", "--fail", "-u", gatewaytest.DMSAccount + ":",
		"--key", f.key.Private, "--pubkey", pub, "--hostpubsha256", fp}
	out, err := exec.CommandContext(t.Context(), "curl", append(base, args...)...).CombinedOutput()
	return string(out), err
}

// TestCurlPushPull: curl sftp:// (libssh2, which on Debian 12 has neither
// AES-GCM nor an -etm MAC) pushes a file and pulls a delivery on defaults.
func TestCurlPushPull(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	src, want := randomFile(t, dir, "export.xml", 2<<20+9)
	url := "sftp://127.0.0.1:" + f.port()
	if out, err := f.curl(t, "-T", src, url+"/outbox/team/export.xml"); err != nil {
		t.Fatalf("curl push: %v\n%s", err, out)
	}
	ts := inbox(t, f.team)
	if len(ts) != 1 {
		t.Fatalf("team has %d deliveries, want 1", len(ts))
	}
	recv := filepath.Join(dir, "received")
	mustLex(t, f.team, "receive", ts[0].ID, "-o", recv)
	if got, _ := os.ReadFile(filepath.Join(recv, "export.xml")); !bytes.Equal(got, want) {
		t.Error("the file received differs from the one curl pushed")
	}
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o700)
	_, memo := randomFile(t, bundle, "memo.txt", 90_000)
	mustLex(t, f.team, "send", "--to", gatewaytest.DMS, "--matter", matter, bundle)
	name := sftpfront.InboxName(inbox(t, f.dms)[0])
	local := filepath.Join(dir, "pulled.age")
	if out, err := f.curl(t, "-o", local, url+"/inbox/"+name); err != nil {
		t.Fatalf("curl pull: %v\n%s", err, out)
	}
	if !tarHolds(t, ageDecrypt(t, local, f.dms), "memo.txt", memo) {
		t.Error("the delivery curl pulled does not decrypt to what was sent")
	}
}

// cutUpload starts cmd (in its own process group) uploading a file to the
// front, waits until more than min bytes are staged, kills the client, and
// waits until the front has kept the interrupted upload for a resume.
func (f *front) cutUpload(t testing.TB, cmd *exec.Cmd, min int64) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // kill ssh too
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kept := strings.Count(f.env.Logs(), "kept for a resume")
	waitFor(t, "the upload to get going", func() bool { return stagedBytes(f.env) > min })
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	waitFor(t, "the front to keep the interrupted upload", func() bool {
		return strings.Count(f.env.Logs(), "kept for a resume") > kept
	})
	if ts := inbox(t, f.team); len(ts) != 0 {
		t.Fatalf("an interrupted upload was delivered: %+v", ts[0])
	}
}

// waitFor polls cond until it holds (an event the test cannot be told of).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReput: an upload cut halfway is kept; OpenSSH's and lftp's reput then
// finish it from where it stopped: one delivery each, byte-identical. A reput
// with nothing to resume fails with a message saying so.
func TestReput(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	receive := func(name string, want []byte) {
		t.Helper()
		ts := inbox(t, f.team)
		if len(ts) != 1 {
			t.Fatalf("team has %d deliveries, want 1", len(ts))
		}
		recv := filepath.Join(dir, "received-"+name)
		mustLex(t, f.team, "receive", ts[0].ID, "-o", recv, "--ack")
		if got, _ := os.ReadFile(filepath.Join(recv, name)); !bytes.Equal(got, want) {
			t.Fatalf("%s received after reput differs from the file (%d vs %d bytes)", name, len(got), len(want))
		}
	}

	t.Run("openssh", func(t *testing.T) {
		need(t, "sftp")
		src, want := randomFile(t, dir, "scan.tif", 16<<20)
		args := append([]string{"-b", "-", "-P", f.port(), "-l", "16000"}, f.sshOpts()...) // 2 MB/s
		cmd := exec.CommandContext(t.Context(), "sftp", append(args, gatewaytest.DMSAccount+"@127.0.0.1")...)
		cmd.Stdin = strings.NewReader("put " + src + " /outbox/team/scan.tif\n")
		f.cutUpload(t, cmd, 1<<20)
		out, err := f.sftp(t, "ls -l /outbox/team\nreput "+src+" /outbox/team/scan.tif\n")
		if err != nil {
			t.Fatalf("sftp reput: %v\n%s", err, out)
		}
		if !strings.Contains(f.env.Logs(), "sftp upload resumed") {
			t.Error("the front did not log a resumed upload")
		}
		receive("scan.tif", want)
	})

	t.Run("lftp", func(t *testing.T) {
		need(t, "lftp")
		src, want := randomFile(t, dir, "batch.zip", 16<<20)
		cmd := f.lftpCmd(t, "set net:limit-rate 2000000; put "+src+" -o /outbox/team/batch.zip")
		f.cutUpload(t, cmd, 1<<20)
		f.lftp(t, "reput "+src+" -o /outbox/team/batch.zip")
		receive("batch.zip", want)
	})

	t.Run("nothing to resume", func(t *testing.T) {
		py := python(t)
		script := filepath.Join(dir, "append.py")
		os.WriteFile(script, []byte(paramikoAppend), 0o600)
		out, err := exec.CommandContext(t.Context(), py, script, "127.0.0.1", f.port(), gatewaytest.DMSAccount,
			f.key.Private, f.kh, "/outbox/team/never-sent.bin").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "nothing to resume") {
			t.Errorf("an append open with nothing to resume: %v\n%s", err, out)
		}
	})
}

// paramikoAppend opens argv[6] for appending (a resume) and writes to it.
const paramikoAppend = `
import sys, paramiko
host, port, user, key, kh, remote = sys.argv[1:7]
c = paramiko.SSHClient()
c.load_host_keys(kh)
c.set_missing_host_key_policy(paramiko.RejectPolicy())
c.connect(host, port=int(port), username=user, key_filename=key, look_for_keys=False, allow_agent=False)
s = c.open_sftp()
with s.open(remote, "a") as fh:
    fh.write(b"more")
`

// TestRealTimes: directories show the front's start time, not Jan 1 0001;
// an upload stays listed with its size and time, and a time set on it is kept.
func TestRealTimes(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	src, _ := randomFile(t, dir, "minutes.docx", 123_456)
	old := time.Date(2024, 5, 17, 10, 30, 0, 0, time.Local)
	os.Chtimes(src, old, old)
	out, err := f.sftp(t, "ls -l /\nls -l /outbox\nput -p "+src+" /outbox/team/\nls -l /outbox/team\n")
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	if strings.Contains(out, "0001") || strings.Contains(out, "1970") {
		t.Errorf("ls -l shows a zero time:\n%s", out)
	}
	if !strings.Contains(out, time.Now().Format("Jan 2 ")) && !strings.Contains(out, time.Now().Add(-time.Hour).Format("Jan 2 ")) {
		t.Errorf("ls -l does not show today's date on the directories:\n%s", out)
	}
	if !strings.Contains(out, "123456 May 17  2024 minutes.docx") {
		t.Errorf("ls -l /outbox/team does not list the upload with its size and the time put -p set:\n%s", out)
	}
}

// TestIdenticalReupload: the same file put twice is delivered once; the same
// name with other content is delivered again.
func TestIdenticalReupload(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	src, _ := randomFile(t, dir, "invoice.pdf", 400_000)
	for range 2 {
		if out, err := f.sftp(t, "put "+src+" /outbox/team/\n"); err != nil {
			t.Fatalf("sftp put: %v\n%s", err, out)
		}
	}
	if ts := inbox(t, f.team); len(ts) != 1 {
		t.Fatalf("an identical re-upload was delivered again: %d deliveries", len(ts))
	}
	randomFile(t, dir, "invoice.pdf", 400_000) // same name and size, new content
	if out, err := f.sftp(t, "put "+src+" /outbox/team/\n"); err != nil {
		t.Fatalf("sftp put: %v\n%s", err, out)
	}
	if ts := inbox(t, f.team); len(ts) != 2 {
		t.Fatalf("a changed file under the same name: %d deliveries, want 2", len(ts))
	}
	if !strings.Contains(f.env.Logs(), "not delivered again") {
		t.Error("the front did not log the identical re-upload")
	}
}

// TestCustodialBundleGet: a custodial account gets a 5 MiB bundle with
// `sftp -b`: the size listed is the size of the tar served, the get exits 0,
// and the tar holds every file byte for byte.
func TestCustodialBundleGet(t *testing.T) {
	f := start(t, func(a *sftpfront.Account) { a.CustodialInbox = true })
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o700)
	files := map[string][]byte{}
	for i, size := range []int{5<<20 - 300_000, 200_000, 99_999, 1} {
		name := fmt.Sprintf("exhibit-%d.pdf", i)
		_, files[name] = randomFile(t, bundle, name, size)
	}
	mustLex(t, f.team, "send", "--to", gatewaytest.DMS, "--matter", matter, bundle)
	out, err := f.sftp(t, "ls -ln /inbox\n")
	if err != nil {
		t.Fatalf("sftp ls: %v\n%s", err, out)
	}
	var name string
	var listed int64
	for _, l := range strings.Split(out, "\n") {
		if fs := strings.Fields(l); len(fs) >= 9 && strings.HasSuffix(fs[len(fs)-1], ".tar") {
			name = path.Base(fs[len(fs)-1])
			fmt.Sscan(fs[4], &listed)
		}
	}
	if name == "" {
		t.Fatalf("no .tar in the custodial inbox:\n%s", out)
	}
	local := filepath.Join(dir, "bundle.tar")
	if out, err := f.sftp(t, "get /inbox/"+name+" "+local+"\n"); err != nil {
		t.Fatalf("sftp -b get of the bundle: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(local)
	if int64(len(got)) != listed {
		t.Errorf("ls -l gave %d bytes, the get served %d", listed, len(got))
	}
	for n, want := range files {
		if !tarHolds(t, got, n, want) {
			t.Errorf("the bundle got does not hold %s byte for byte", n)
		}
	}
}

// TestTempNameUpload: WinSCP's default sequence for files over 100 KB, driven
// with OpenSSH's sftp (WinSCP itself runs on Windows): upload to
// <name>.filepart, then rename it to <name>. The delivery is named <name>, the
// rename succeeds, the listing shows <name>; the same sequence again is
// recognised as identical and not delivered twice.
func TestTempNameUpload(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	src, want := randomFile(t, dir, "brief.pdf", 250_000)
	batch := "put " + src + " /outbox/team/brief.pdf.filepart\nrename /outbox/team/brief.pdf.filepart /outbox/team/brief.pdf\nls -l /outbox/team\n"
	for range 2 {
		out, err := f.sftp(t, batch)
		if err != nil {
			t.Fatalf("sftp put + rename: %v\n%s", err, out)
		}
		if !strings.Contains(out, "250000") || !strings.Contains(out, " brief.pdf\n") {
			t.Errorf("the listing does not show brief.pdf after the rename:\n%s", out)
		}
	}
	ts := inbox(t, f.team)
	if len(ts) != 1 {
		t.Fatalf("team has %d deliveries, want 1", len(ts))
	}
	recv := filepath.Join(dir, "received")
	mustLex(t, f.team, "receive", ts[0].ID, "-o", recv)
	if got, _ := os.ReadFile(filepath.Join(recv, "brief.pdf")); !bytes.Equal(got, want) {
		t.Error("brief.pdf received differs from the file put as brief.pdf.filepart")
	}
}
