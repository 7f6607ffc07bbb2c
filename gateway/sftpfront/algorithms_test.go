package sftpfront_test

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// TestAlgorithms: OpenSSH on its defaults gets in (AES-CTR with an -etm MAC,
// its own first choice among what the front offers) and so does one asking for
// AES-GCM; a client offering only CBC or only SHA-1 MACs is refused, and the
// gateway logs at WARN what it offered and the setting that would admit it.
// legacy_algorithms admits CBC and SHA-1 for the accounts it names until its
// date: another account using them is refused at login, and after the date
// they are not offered. Unknown or legacy algorithms in the main lists are
// configuration errors naming them.
func TestAlgorithms(t *testing.T) {
	f := start(t)
	out, err := f.sftp(t, "ls /\n", "-v")
	if err != nil {
		t.Fatalf("sftp on defaults: %v\n%s", err, out)
	}
	if !strings.Contains(out, "cipher: aes128-ctr MAC: hmac-sha2-256-etm@openssh.com") {
		t.Errorf("OpenSSH on defaults did not negotiate aes128-ctr with hmac-sha2-256-etm:\n%s", out)
	}
	if out, err := f.sftp(t, "ls /\n", "-v", "-c", "aes128-gcm@openssh.com"); err != nil || !strings.Contains(out, "cipher: aes128-gcm@openssh.com") {
		t.Errorf("sftp -c aes128-gcm@openssh.com: %v\n%s", err, out)
	}
	for _, tc := range []struct{ opt, fix string }{
		{"-c aes128-cbc", `sftp.legacy_algorithms.ciphers`},
		{"-o MACs=hmac-sha1", `sftp.legacy_algorithms.macs`},
	} {
		opt := strings.Fields(tc.opt)
		if out, err := f.sftp(t, "ls /\n", opt...); err == nil {
			t.Errorf("sftp %s got in:\n%s", tc.opt, out)
		}
		// The client may exit before the gateway has logged its side.
		waitFor(t, "a WARN naming "+tc.fix, func() bool {
			logs := f.env.Logs()
			return strings.Contains(logs, "no algorithm in common with the client") && strings.Contains(logs, tc.fix)
		})
	}

	other := gatewaytest.NewSSHKey(t, t.TempDir(), "scanner")
	legacy := func(until time.Time) func(*sftpfront.Config) {
		return func(c *sftpfront.Config) {
			c.Accounts = append(c.Accounts, sftpfront.Account{Name: "scanner", ID: gatewaytest.DMS,
				AuthorizedKeys: []string{other.Authorized}, Matter: matter})
			c.LegacyAlgorithms = sftpfront.LegacyAlgorithms{Accounts: []string{gatewaytest.DMSAccount},
				Ciphers: []string{"aes128-cbc"}, MACs: []string{"hmac-sha1"}, Until: until}
		}
	}
	open := startFront(t, legacy(time.Now().Add(24*time.Hour)))
	if out, err := open.sftp(t, "ls /\n", "-c", "aes128-cbc", "-o", "MACs=hmac-sha1"); err != nil {
		t.Errorf("legacy_algorithms for dms: sftp -c aes128-cbc -o MACs=hmac-sha1 refused: %v\n%s", err, out)
	}
	waitFor(t, "the legacy login to be logged", func() bool { return strings.Contains(open.env.Logs(), "sftp login with legacy algorithms") })
	open.key = other
	if out, err := open.sftpAs(t, "scanner", "ls /\n", "-c", "aes128-cbc"); err == nil {
		t.Errorf("an account not in legacy_algorithms.accounts got in over aes128-cbc:\n%s", out)
	}
	waitFor(t, "the refused legacy login to be logged", func() bool { return strings.Contains(open.env.Logs(), "not admitted for") })
	if out, err := open.sftpAs(t, "scanner", "ls /\n"); err != nil {
		t.Errorf("the same account on modern algorithms: %v\n%s", err, out)
	}
	expired := startFront(t, legacy(time.Now().Add(-time.Hour)))
	if out, err := expired.sftp(t, "ls /\n", "-c", "aes128-cbc"); err == nil {
		t.Errorf("legacy_algorithms past its date still admits aes128-cbc:\n%s", out)
	}
	if !strings.Contains(expired.env.Logs(), "no longer offered") {
		t.Error("an expired legacy_algorithms was not logged at start")
	}

	for _, tc := range []struct {
		name string
		cfg  sftpfront.Config
		want string
	}{
		{"unknown cipher", sftpfront.Config{Ciphers: []string{"rot13"}}, "rot13"},
		{"cbc in ciphers", sftpfront.Config{Ciphers: []string{"aes128-cbc"}}, "sftp.legacy_algorithms"},
		{"sha1 in macs", sftpfront.Config{MACs: []string{"hmac-sha1"}}, "sftp.legacy_algorithms"},
		{"sha1 kex", sftpfront.Config{KeyExchanges: []string{"diffie-hellman-group14-sha1"}}, "sftp.legacy_algorithms"},
		{"legacy without until", sftpfront.Config{LegacyAlgorithms: sftpfront.LegacyAlgorithms{
			Accounts: []string{"x"}, Ciphers: []string{"aes128-cbc"}}}, "until are required"},
		{"legacy for years", sftpfront.Config{LegacyAlgorithms: sftpfront.LegacyAlgorithms{
			Accounts: []string{"x"}, Ciphers: []string{"aes128-cbc"}, Until: time.Now().AddDate(3, 0, 0)}}, "more than a year ahead"},
		{"legacy for no account", sftpfront.Config{LegacyAlgorithms: sftpfront.LegacyAlgorithms{
			Accounts: []string{"ghost"}, Ciphers: []string{"aes128-cbc"}, Until: time.Now()}}, `"ghost" is not an account`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.Listen = "127.0.0.1:0"
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestAlgorithmsYAML: the algorithm settings as lexgate.yaml spells them; a
// date alone is a valid until.
func TestAlgorithmsYAML(t *testing.T) {
	const doc = `
listen: 127.0.0.1:0
macs: [hmac-sha2-256-etm@openssh.com]
legacy_algorithms:
  accounts: [dms]
  ciphers: [aes128-cbc]
  macs: [hmac-sha1]
  until: 2027-03-31
upload_window: 30m
`
	var c sftpfront.Config
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC)
	if !c.LegacyAlgorithms.Until.Equal(want) || c.UploadWindow != 30*time.Minute || len(c.MACs) != 1 ||
		c.LegacyAlgorithms.Ciphers[0] != "aes128-cbc" {
		t.Errorf("decoded %+v", c)
	}
}
