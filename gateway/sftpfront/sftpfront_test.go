package sftpfront_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

const matter = "HL-2026-0042"

// need finds an outside program: missing, the test fails under CI and skips otherwise.
func need(t testing.TB, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (make deb-deps installs it): %v", prog, err)
		}
		t.Skipf("%s is not installed (make deb-deps installs it)", prog)
	}
	return p
}

// front is a gateway with the SFTP front, the DMS account, and lex configs for
// the review team and the DMS, each with a registered age key.
type front struct {
	env       *gatewaytest.Env
	key       gatewaytest.SSHKey
	team, dms string // lex configs
	kh        string // known_hosts
}

func start(t testing.TB, opts ...func(*sftpfront.Account)) *front {
	t.Helper()
	return startFront(t, nil, opts...)
}

// startFront is start with the front's config changed by cfg (when not nil)
// after the account and recipients are in.
func startFront(t testing.TB, cfg func(*sftpfront.Config), opts ...func(*sftpfront.Account)) *front {
	t.Helper()
	dir := t.TempDir()
	key := gatewaytest.NewSSHKey(t, dir, "dms_ed25519")
	acct := sftpfront.Account{Name: gatewaytest.DMSAccount, ID: gatewaytest.DMS,
		AuthorizedKeys: []string{key.Authorized}, Matter: matter}
	for _, o := range opts {
		o(&acct)
	}
	env := gatewaytest.Start(t, gatewaytest.WithSFTP(map[string]string{"team": gatewaytest.Team, "alice": gatewaytest.Alice,
		"self": gatewaytest.DMS}, acct), gatewaytest.WithConfig(func(c *gateway.Config) {
		if cfg != nil {
			cfg(&c.SFTP)
		}
	}))
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

func lex(t testing.TB, config string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), append([]string{"--config", config}, args...), nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustLex(t testing.TB, config string, args ...string) string {
	t.Helper()
	code, out, errOut := lex(t, config, args...)
	if code != 0 {
		t.Fatalf("lex %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// sshOpts are the options every OpenSSH program gets: the pinned host key, the
// account's key only, no passwords, no prompts.
func (f *front) sshOpts() []string {
	return []string{"-i", f.key.Private, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + f.kh,
		"-o", "PasswordAuthentication=no", "-o", "LogLevel=ERROR"}
}

// sftp runs the OpenSSH sftp client in batch mode, with extra options if any.
func (f *front) sftp(t testing.TB, batch string, extra ...string) (string, error) {
	t.Helper()
	return f.sftpAs(t, gatewaytest.DMSAccount, batch, extra...)
}

// sftpAs is sftp logging in as account.
func (f *front) sftpAs(t testing.TB, account, batch string, extra ...string) (string, error) {
	t.Helper()
	need(t, "sftp")
	_, port, _ := strings.Cut(f.env.SFTPAddr(), ":")
	args := append(append([]string{"-b", "-", "-P", port}, extra...), f.sshOpts()...)
	cmd := exec.CommandContext(t.Context(), "sftp", append(args, account+"@127.0.0.1")...)
	cmd.Stdin = strings.NewReader(batch)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func randomFile(t testing.TB, dir, name string, size int) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// inbox returns the transfers waiting for config's identity.
func inbox(t testing.TB, config string) []api.Transfer {
	t.Helper()
	var r struct {
		Transfers []api.Transfer `json:"transfers"`
	}
	out := mustLex(t, config, "inbox", "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		var ts []api.Transfer
		if err2 := json.Unmarshal([]byte(out), &ts); err2 != nil {
			t.Fatalf("lex inbox --json: %v\n%s", err, out)
		}
		return ts
	}
	return r.Transfers
}

// waitAudit waits for the audit log's files to hold needle (entries are
// integrated in batches).
func waitAudit(t testing.TB, env *gatewaytest.Env, needle string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		found := false
		filepath.WalkDir(env.Gateway.AuditDir(), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !found {
				if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(needle)) {
					found = true
				}
			}
			return nil
		})
		if found {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("no audit entry holds %q", needle)
}

// TestOpenSSHPutReceiveGet: the stock OpenSSH sftp client puts a file into
// /outbox/team/; the team receives it with lex receive, identical bytes, and
// sees that the gateway sealed it on ingest. The team sends a bundle to the DMS,
// which downloads it from /inbox with sftp, decrypts it with the stock age CLI,
// and acknowledges it by removing it.
func TestOpenSSHPutReceiveGet(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	src, want := randomFile(t, dir, "invoice 2026-03.pdf", 5<<20+123)
	if out, err := f.sftp(t, "put \""+src+"\" /outbox/team/\n"); err != nil {
		t.Fatalf("sftp put: %v\n%s", err, out)
	}
	ts := inbox(t, f.team)
	if len(ts) != 1 {
		t.Fatalf("team inbox holds %d transfers, want 1", len(ts))
	}
	if ts[0].Sender != gatewaytest.DMS || ts[0].Matter != matter {
		t.Errorf("transfer from %s matter %s, want %s %s", ts[0].Sender, ts[0].Matter, gatewaytest.DMS, matter)
	}
	recv := filepath.Join(dir, "received")
	out := mustLex(t, f.team, "receive", ts[0].ID, "-o", recv, "--ack")
	if !strings.Contains(out, "from "+gatewaytest.DMS+", sealed on ingest by "+gatewaytest.GatewayID+" (signature verified)") {
		t.Errorf("lex receive does not say who sealed it:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(recv, "invoice 2026-03.pdf"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("received file differs from the one put (err %v, %d vs %d bytes)", err, len(got), len(want))
	}
	for _, p := range f.env.SpoolFiles() {
		if strings.Contains(p, "staging") {
			t.Errorf("staged file left behind: %s", p)
		}
	}
	waitAudit(t, f.env, "sealed on ingest by "+gatewaytest.GatewayID)

	// The other way: a delivery to the DMS, downloaded over SFTP, decrypted by stock age.
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o700)
	_, memo := randomFile(t, bundle, "memo.txt", 70_000)
	mustLex(t, f.team, "send", "--to", gatewaytest.DMS, "--matter", matter, bundle)
	ts = inbox(t, f.dms)
	if len(ts) != 1 {
		t.Fatalf("dms inbox holds %d transfers, want 1", len(ts))
	}
	name := sftpfront.InboxName(ts[0])
	local := filepath.Join(dir, "download.age")
	out, err = f.sftp(t, "ls -l /inbox\nget /inbox/"+name+" "+local+"\n")
	if err != nil || !strings.Contains(out, name) {
		t.Fatalf("sftp ls/get: %v\n%s", err, out)
	}
	plain := ageDecrypt(t, local, f.dms)
	if !tarHolds(t, plain, "memo.txt", memo) {
		t.Fatal("the decrypted bundle does not hold memo.txt with the bytes sent")
	}
	if out, err := f.sftp(t, "rm /inbox/"+name+"\n"); err != nil {
		t.Fatalf("sftp rm (acknowledge): %v\n%s", err, out)
	}
	if ts := inbox(t, f.dms); len(ts) != 0 {
		t.Errorf("after rm, the dms inbox still holds %d transfers", len(ts))
	}
}

// ageDecrypt decrypts file with the stock age CLI and the identity lex keygen
// wrote for config.
func ageDecrypt(t testing.TB, file, config string) []byte {
	t.Helper()
	root, _ := filepath.Abs("../..")
	identity := filepath.Join(filepath.Dir(config), "identity.age")
	cmd := exec.CommandContext(t.Context(), "go", "tool", "age", "-d", "-i", identity, file)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool age -d: %v\n%s", err, stderr.String())
	}
	return out
}

func tarHolds(t testing.TB, b []byte, name string, want []byte) bool {
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		if strings.HasSuffix(h.Name, name) {
			got, _ := io.ReadAll(tr)
			return bytes.Equal(got, want)
		}
	}
}

// TestLftpPutGet: a second, independent SFTP implementation (lftp's, over an
// OpenSSH transport) puts a file and gets a delivery.
func TestLftpPutGet(t *testing.T) {
	need(t, "lftp")
	f := start(t)
	dir := t.TempDir()
	src, want := randomFile(t, dir, "scan-0001.tif", 3<<20+7)
	f.lftp(t, "put "+src+" -o /outbox/team/scan-0001.tif")
	ts := inbox(t, f.team)
	if len(ts) != 1 {
		t.Fatalf("team inbox holds %d transfers, want 1", len(ts))
	}
	recv := filepath.Join(dir, "received")
	mustLex(t, f.team, "receive", ts[0].ID, "-o", recv)
	if got, err := os.ReadFile(filepath.Join(recv, "scan-0001.tif")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("received file differs (err %v)", err)
	}
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o700)
	_, memo := randomFile(t, bundle, "memo.txt", 1000)
	mustLex(t, f.team, "send", "--to", gatewaytest.DMS, "--matter", matter, bundle)
	name := sftpfront.InboxName(inbox(t, f.dms)[0])
	local := filepath.Join(dir, "got.age")
	f.lftp(t, "get /inbox/"+name+" -o "+local)
	if !tarHolds(t, ageDecrypt(t, local, f.dms), "memo.txt", memo) {
		t.Fatal("the bundle lftp downloaded does not decrypt to what was sent")
	}
}

func (f *front) lftp(t testing.TB, cmds string) {
	t.Helper()
	out, err := f.lftpCmd(t, cmds).CombinedOutput()
	if err != nil {
		t.Fatalf("lftp %s: %v\n%s", cmds, err, out)
	}
}

// lftpCmd is lftp running cmds on the front over OpenSSH, failing on the
// first error.
func (f *front) lftpCmd(t testing.TB, cmds string) *exec.Cmd {
	t.Helper()
	need(t, "lftp")
	_, port, _ := strings.Cut(f.env.SFTPAddr(), ":")
	connect := "ssh -a -x " + strings.Join(f.sshOpts(), " ")
	script := "set sftp:connect-program \"" + connect + "\"; set cmd:fail-exit yes; set net:max-retries 1; " + cmds + "; bye"
	return exec.CommandContext(t.Context(), "lftp", "-u", gatewaytest.DMSAccount+",", "-p", port, "-e", script, "sftp://127.0.0.1")
}
