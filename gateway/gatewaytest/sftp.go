package gatewaytest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// DMSAccount is the SSH user name of the dev PKI's legacy DMS on the SFTP front.
const DMSAccount = "dms"

// WithSFTP enables the SFTP front on 127.0.0.1:0 with a host key in the store
// directory and the given accounts; recipients maps /outbox aliases to SPIFFE
// IDs. Change anything else with WithConfig.
func WithSFTP(recipients map[string]string, accounts ...sftpfront.Account) Option {
	return func(c *gateway.Config) {
		c.SFTP.Listen = "127.0.0.1:0"
		c.SFTP.Accounts = append(c.SFTP.Accounts, accounts...)
		if c.SFTP.Recipients == nil {
			c.SFTP.Recipients = map[string]string{}
		}
		for a, id := range recipients {
			c.SFTP.Recipients[a] = id
		}
	}
}

// SSHKey is a client key pair for an OpenSSH client.
type SSHKey struct {
	Private    string // path of the OpenSSH private key file (0600)
	Authorized string // the public key, an authorized_keys line
}

// NewSSHKey writes a fresh Ed25519 key pair for an SSH client into dir.
func NewSSHKey(t testing.TB, dir, name string) SSHKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return SSHKey{Private: path, Authorized: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub)))}
}

// SFTPAddr is the SFTP front's host:port; the test fails if the front is off.
func (e *Env) SFTPAddr() string {
	e.t.Helper()
	if e.Gateway.SFTP() == nil {
		e.t.Fatal("gatewaytest: the SFTP front is off (use WithSFTP)")
	}
	return e.Gateway.SFTP().Addr()
}

// KnownHosts writes a known_hosts file pinning the SFTP front's host key and
// returns its path, for StrictHostKeyChecking=yes.
func (e *Env) KnownHosts() string {
	e.t.Helper()
	addr := e.SFTPAddr()
	host, port, _ := strings.Cut(addr, ":")
	line := fmt.Sprintf("[%s]:%s %s", host, port, e.Gateway.SFTP().HostPublicKey())
	path := filepath.Join(e.Dir, "known_hosts")
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}
