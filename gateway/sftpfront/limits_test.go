package sftpfront_test

import (
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// TestLoginRefusedByPolicy: the key is right, but the account acts as an
// identity of an organisation the policy does not know, so sftp_login is
// refused: the client gets no session, and the refusal is audited with the
// policy's reason.
func TestLoginRefusedByPolicy(t *testing.T) {
	f := start(t, func(a *sftpfront.Account) { a.ID = "spiffe://unknown-firm.example/legacy/dms" })
	out, err := f.sftp(t, "ls /\n")
	if err == nil {
		t.Fatalf("sftp logged in although the policy refuses sftp_login:\n%s", out)
	}
	waitAudit(t, f.env, "unknown-firm.example")
	waitAudit(t, f.env, "org.unknown")
	if !strings.Contains(f.env.Logs(), "sftp login refused") {
		t.Error("the gateway did not log the refused login")
	}
}

// TestAuthAttemptLimits: a connection gets MaxAuthTries public keys; a source
// address with MaxAuthFailuresPerAddr failures is refused before it can try,
// even with the right key.
func TestAuthAttemptLimits(t *testing.T) {
	f := startFront(t, func(c *sftpfront.Config) {
		c.MaxAuthTries = 2
		c.MaxAuthFailuresPerAddr = 4
		c.AuthFailureWindow = time.Hour
	})
	dir := t.TempDir()
	wrong1 := gatewaytest.NewSSHKey(t, dir, "wrong1")
	wrong2 := gatewaytest.NewSSHKey(t, dir, "wrong2")

	// Per connection: two wrong keys first use up the tries; the right key,
	// offered third, is never looked at.
	if out, err := f.sftpKeys(t, "ls /\n", wrong1.Private, wrong2.Private, f.key.Private); err == nil {
		t.Fatalf("the third key was tried although max_auth_tries is 2:\n%s", out)
	}
	// That connection failed three times (the right key too, once the tries
	// were used up); one more failure from 127.0.0.1 reaches 4.
	if out, err := f.sftpKeys(t, "ls /\n", wrong1.Private); err == nil {
		t.Fatalf("a wrong key logged in:\n%s", out)
	}
	// Now even the right key, alone, is refused: the address is blocked.
	if out, err := f.sftp(t, "ls /\n"); err == nil {
		t.Fatalf("a blocked address logged in:\n%s", out)
	}
	if !strings.Contains(f.env.Logs(), "too many failed authentications from this address") {
		t.Error("the gateway did not log the blocked address")
	}
}

// TestSessionLimitPerAccount: with max_sessions_per_account 1, a second
// session of the account is refused while the first is open, and allowed once
// it has closed.
func TestSessionLimitPerAccount(t *testing.T) {
	f := startFront(t, func(c *sftpfront.Config) { c.MaxSessionsPerAccount = 1 })
	first, stdin := f.sftpOpen(t)
	if out, err := f.sftp(t, "ls /\n"); err == nil {
		t.Fatalf("a second session was opened while the first is open:\n%s", out)
	} else if !strings.Contains(out, "already has 1 sessions open") {
		t.Logf("sftp said: %s", out) // OpenSSH does not always print the reason
	}
	stdin.Close() // the first session ends
	if err := first.Wait(); err != nil {
		t.Fatalf("first session: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := f.sftp(t, "ls /\n")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new session after the first closed: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCertificateAuthority: an account with only its organisation's SSH CA
// logs in with a user certificate the CA signed for it (ssh-keygen -s); a
// certificate for another principal, an expired one, and one signed by another
// CA are refused.
func TestCertificateAuthority(t *testing.T) {
	keygen := need(t, "ssh-keygen")
	dir := t.TempDir()
	ca := gatewaytest.NewSSHKey(t, dir, "harbor_ca")
	otherCA := gatewaytest.NewSSHKey(t, dir, "other_ca")
	f := start(t, func(a *sftpfront.Account) {
		a.AuthorizedKeys = nil
		a.CertAuthorities = []string{ca.Authorized}
	})
	// cert signs a fresh key with signer for principal, valid for validity, and
	// returns the key's path (OpenSSH finds <key>-cert.pub beside it).
	cert := func(name string, signer gatewaytest.SSHKey, principal, validity string) string {
		k := gatewaytest.NewSSHKey(t, dir, name)
		if err := os.WriteFile(k.Private+".pub", []byte(k.Authorized+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(keygen, "-q", "-s", signer.Private, "-I", name, "-n", principal, "-V", validity, k.Private+".pub").CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen -s: %v\n%s", err, out)
		}
		return k.Private
	}
	good := cert("good", ca, gatewaytest.DMSAccount, "-5m:+1h")
	if out, err := f.sftpKeys(t, "ls /\n", good); err != nil {
		t.Fatalf("a certificate signed by the account's CA was refused: %v\n%s", err, out)
	}
	for name, key := range map[string]string{
		"other principal": cert("other", ca, "someone-else", "-5m:+1h"),
		"expired":         cert("expired", ca, gatewaytest.DMSAccount, "-2h:-1h"),
		"other CA":        cert("stranger", otherCA, gatewaytest.DMSAccount, "-5m:+1h"),
	} {
		if out, err := f.sftpKeys(t, "ls /\n", key); err == nil {
			t.Errorf("%s: the certificate logged in:\n%s", name, out)
		}
	}
	// The CA's own key is not an authorized key of the account.
	if out, err := f.sftpKeys(t, "ls /\n", ca.Private); err == nil {
		t.Errorf("the bare CA key logged in:\n%s", out)
	}
}

// TestHandshakeAndIdleTimeouts: a connection that never finishes the SSH
// handshake is closed after handshake_timeout; a logged-in session that moves
// no byte is closed after idle_timeout.
func TestHandshakeAndIdleTimeouts(t *testing.T) {
	f := startFront(t, func(c *sftpfront.Config) {
		c.HandshakeTimeout = time.Second
		c.IdleTimeout = 2 * time.Second
	})
	c, err := net.Dial("tcp", f.env.SFTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil { // the server's banner, then EOF when it gives up
		t.Errorf("a connection that never finished the handshake was kept open: %v", err)
	}

	// sftp in batch mode notices the closed connection at its next command.
	idle, stdin := f.sftpOpen(t)
	waitFor(t, "the session to be counted", func() bool { return metric(scrape(t, f.env), "lexgate_sftp_sessions") == "1" })
	// Nothing but idle_timeout ends a session that moves no byte.
	waitFor(t, "the idle session to be closed", func() bool { return metric(scrape(t, f.env), "lexgate_sftp_sessions") == "0" })
	io.WriteString(stdin, "ls /\n")
	stdin.Close()
	if err := idle.Wait(); err == nil {
		t.Error("a session idle for longer than idle_timeout was still open")
	}
}

// sftpKeys runs sftp in batch mode offering the given private keys, in order.
func (f *front) sftpKeys(t testing.TB, batch string, keys ...string) (string, error) {
	t.Helper()
	need(t, "sftp")
	_, port, _ := strings.Cut(f.env.SFTPAddr(), ":")
	args := []string{"-b", "-", "-P", port}
	for _, k := range keys {
		args = append(args, "-i", k)
	}
	args = append(args, f.sshOpts()[2:]...) // every option but the account's key
	cmd := exec.CommandContext(t.Context(), "sftp", append(args, gatewaytest.DMSAccount+"@127.0.0.1")...)
	cmd.Stdin = strings.NewReader(batch)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sftpOpen starts an interactive sftp session that stays open until stdin is
// closed, and waits until it is logged in.
func (f *front) sftpOpen(t testing.TB) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	need(t, "sftp")
	_, port, _ := strings.Cut(f.env.SFTPAddr(), ":")
	args := append([]string{"-b", "-", "-P", port}, f.sshOpts()...)
	cmd := exec.CommandContext(t.Context(), "sftp", append(args, gatewaytest.DMSAccount+"@127.0.0.1")...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); r.Close() })
	// "pwd" answers once the session is up.
	io.WriteString(stdin, "pwd\n")
	buf := make([]byte, 4096)
	var seen strings.Builder
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	for !strings.Contains(seen.String(), "Remote working directory") {
		n, err := r.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			t.Fatalf("the first session did not start: %v\n%s", err, seen.String())
		}
	}
	go io.Copy(io.Discard, r)
	return cmd, stdin
}
