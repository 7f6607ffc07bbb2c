package sftpfront

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/crypto/ssh"
)

// Config is the `sftp:` section of lexgate.yaml. The front is off while Listen
// is empty.
type Config struct {
	// Listen is the SSH address, e.g. 127.0.0.1:2222. Empty: the front is off.
	Listen string `yaml:"listen"`
	// HostKey is the host key file (OpenSSH PEM), generated (Ed25519, 0600) on
	// first start. Default <store.dir>/sftp_host_ed25519_key.
	HostKey string `yaml:"host_key"`
	// Accounts are the legacy systems allowed in, by SSH user name.
	Accounts []Account `yaml:"accounts"`
	// Recipients are aliases usable as /outbox/<alias>: alias → SPIFFE ID. A
	// recipient may also be named by its SPIFFE ID's trust domain and path with
	// the slashes as "+", e.g. /outbox/manila-lpo.example+site+review-team.
	Recipients map[string]string `yaml:"recipients"`
	// MaxUploadSize bounds one uploaded file in bytes (default 16 GiB; an
	// account may set a lower one).
	MaxUploadSize int64 `yaml:"max_upload_size"`
	// MaxAuthTries bounds authentication attempts per connection (default 3).
	MaxAuthTries int `yaml:"max_auth_tries"`
	// MaxAuthFailuresPerAddr bounds failed attempts per source address in
	// AuthFailureWindow; past it, connections from that address are refused
	// until the window passes (default 20 per 10m).
	MaxAuthFailuresPerAddr int           `yaml:"max_auth_failures_per_addr"`
	AuthFailureWindow      time.Duration `yaml:"auth_failure_window"`
	// HandshakeTimeout bounds the SSH handshake and authentication (default 15s).
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// IdleTimeout closes a connection that moved no byte for this long (default 5m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxSessionsPerAccount bounds concurrent SFTP sessions of one account (default 4).
	MaxSessionsPerAccount int `yaml:"max_sessions_per_account"`
	// Ciphers are the SSH ciphers offered (default DefaultCiphers). Clients
	// pick the first of their own list that is offered, so only leaving a
	// cipher out steers them. chacha20-poly1305@openssh.com works but costs
	// the gateway about twice the CPU per byte. See algorithms.go.
	Ciphers []string `yaml:"ciphers"`
	// MACs are the MACs offered with AES-CTR (default DefaultMACs).
	MACs []string `yaml:"macs"`
	// KeyExchanges are the key exchanges offered (default DefaultKeyExchanges).
	KeyExchanges []string `yaml:"key_exchanges"`
	// LegacyAlgorithms admits SHA-1 and CBC for named accounts until a date.
	LegacyAlgorithms LegacyAlgorithms `yaml:"legacy_algorithms"`
	// UploadWindow is how long a finished upload stays listed in its outbox
	// directory (so a client's confirm, stat and set-time steps find it), how
	// long an identical re-upload of it is recognised and not delivered again,
	// and how long an interrupted upload is kept for a resume (reput). Default
	// 15m. See docs/sftp.md.
	UploadWindow time.Duration `yaml:"upload_window"`
}

// Account is one legacy system.
type Account struct {
	// Name is the SSH user name.
	Name string `yaml:"name"`
	// ID is the SPIFFE ID the account acts as; policy decides on it.
	ID string `yaml:"spiffe_id"`
	// AuthorizedKeys are public keys in authorized_keys format ("ssh-ed25519 AAAA… comment").
	AuthorizedKeys []string `yaml:"authorized_keys"`
	// CertAuthorities are SSH CA public keys (authorized_keys format): a user
	// certificate signed by one of them, valid now, naming Name as a principal, is accepted.
	CertAuthorities []string `yaml:"cert_authorities"`
	// Matter, Labels and Regions go into the manifest of every upload.
	Matter  string   `yaml:"matter"`
	Labels  []string `yaml:"labels"`
	Regions []string `yaml:"data_subject_regions"`
	// MaxUploadSize lowers the front's limit for this account.
	MaxUploadSize int64 `yaml:"max_upload_size"`
	// CustodialInbox makes the gateway hold an age identity for the account
	// (sealed at rest beside the host key, its recipient registered as the
	// account's only key) and serve /inbox decrypted, for systems that cannot
	// run age. The gateway can then read everything sent to the account: off
	// by default. See the README's SFTP section.
	CustodialInbox bool `yaml:"custodial_inbox"`
}

// Enabled reports whether the front is configured to run.
func (c *Config) Enabled() bool { return c.Listen != "" }

func (c *Config) withDefaults() Config {
	out := *c
	if out.MaxUploadSize == 0 {
		out.MaxUploadSize = 16 << 30
	}
	if out.MaxAuthTries == 0 {
		out.MaxAuthTries = 3
	}
	if out.MaxAuthFailuresPerAddr == 0 {
		out.MaxAuthFailuresPerAddr = 20
	}
	if out.AuthFailureWindow == 0 {
		out.AuthFailureWindow = 10 * time.Minute
	}
	if out.HandshakeTimeout == 0 {
		out.HandshakeTimeout = 15 * time.Second
	}
	if out.IdleTimeout == 0 {
		out.IdleTimeout = 5 * time.Minute
	}
	if out.MaxSessionsPerAccount == 0 {
		out.MaxSessionsPerAccount = 4
	}
	if len(out.Ciphers) == 0 {
		out.Ciphers = DefaultCiphers
	}
	if len(out.MACs) == 0 {
		out.MACs = DefaultMACs
	}
	if len(out.KeyExchanges) == 0 {
		out.KeyExchanges = DefaultKeyExchanges
	}
	if out.UploadWindow == 0 {
		out.UploadWindow = 15 * time.Minute
	}
	return out
}

// Validate reports every problem in the config, each naming its key.
func (c *Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("sftp."+format, args...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen: %q is not host:port: %v", c.Listen, err)
	}
	if c.MaxUploadSize < 0 || c.MaxAuthTries < 0 || c.MaxAuthFailuresPerAddr < 0 || c.AuthFailureWindow < 0 ||
		c.HandshakeTimeout < 0 || c.IdleTimeout < 0 || c.MaxSessionsPerAccount < 0 {
		bad("limits: values must not be negative")
	}
	if c.UploadWindow < 0 {
		bad("upload_window: must not be negative")
	}
	c.validateAlgorithms(bad)
	for alias, id := range c.Recipients {
		if alias == "" || strings.ContainsAny(alias, "/+") || alias == "." || alias == ".." {
			bad("recipients: alias %q: use a name without / or +", alias)
		}
		if _, err := spiffeid.FromString(id); err != nil {
			bad("recipients.%s: %q: %v", alias, id, err)
		}
	}
	seen := map[string]bool{}
	for i, a := range c.Accounts {
		if a.Name == "" || seen[a.Name] {
			bad("accounts[%d]: name %q is empty or repeated", i, a.Name)
		}
		seen[a.Name] = true
		if _, err := spiffeid.FromString(a.ID); err != nil {
			bad("accounts[%d] (%s): spiffe_id %q: %v", i, a.Name, a.ID, err)
		}
		if len(a.AuthorizedKeys)+len(a.CertAuthorities) == 0 {
			bad("accounts[%d] (%s): no authorized_keys or cert_authorities: the account could never log in", i, a.Name)
		}
		for _, k := range append(append([]string{}, a.AuthorizedKeys...), a.CertAuthorities...) {
			if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
				bad("accounts[%d] (%s): key %.30q…: %v", i, a.Name, k, err)
			}
		}
		if a.Matter == "" {
			bad("accounts[%d] (%s): matter is required: every upload is filed under one", i, a.Name)
		}
		if a.MaxUploadSize < 0 {
			bad("accounts[%d] (%s): max_upload_size must not be negative", i, a.Name)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}
