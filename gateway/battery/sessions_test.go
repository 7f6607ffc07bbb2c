package battery_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// TestExhaustionSessionsPerAccount: an SFTP account holds at most
// sftp.max_sessions_per_account sessions at once; one more is refused while
// they are open, and served once one closes. (OpenSSH's view of the same limit
// is in sftpfront's TestSessionLimitPerAccount.)
func TestExhaustionSessionsPerAccount(t *testing.T) {
	key := gatewaytest.NewSSHKey(t, t.TempDir(), "dms_ed25519")
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC(),
		gatewaytest.WithSFTP(map[string]string{"team": gatewaytest.Team},
			sftpfront.Account{Name: gatewaytest.DMSAccount, ID: gatewaytest.DMS, AuthorizedKeys: []string{key.Authorized}, Matter: "HL-2026-0042"}),
		gatewaytest.WithConfig(func(c *gateway.Config) { c.SFTP.MaxSessionsPerAccount = 2 }))
	pem, err := os.ReadFile(key.Private)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ClientConfig{User: gatewaytest.DMSAccount, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second} // the host key is not what this row tests
	open := func() (*ssh.Client, error) {
		c, err := ssh.Dial("tcp", env.SFTPAddr(), cfg)
		if err != nil {
			return nil, err
		}
		s, err := c.NewSession()
		if err == nil {
			err = s.RequestSubsystem("sftp")
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	var held []*ssh.Client
	for i := range 2 {
		c, err := open()
		if err != nil {
			t.Fatalf("session %d of 2: %v", i+1, err)
		}
		held = append(held, c)
	}
	if c, err := open(); err == nil {
		c.Close()
		t.Fatal("a third session was served with max_sessions_per_account 2")
	} else {
		t.Logf("third session refused: %v", err)
	}
	held[0].Close()
	var c *ssh.Client
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if c, err = open(); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("no session after one closed: %v", err)
	}
	c.Close()
	held[1].Close()
}

// goroutinesSettle waits until the process runs at most slack more goroutines
// than base: the connections a row opened are gone from the gateway too.
func goroutinesSettle(t *testing.T, base, slack int) {
	t.Helper()
	n := 0
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n = runtime.NumGoroutine(); n <= base+slack {
			return
		}
	}
	buf := make([]byte, 1<<20)
	t.Errorf("%d goroutines, %d before the row (slack %d):\n%s", n, base, slack, buf[:runtime.Stack(buf, true)])
}
