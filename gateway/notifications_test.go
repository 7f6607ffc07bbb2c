package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway"
)

// TestConfigNotifySIEM: the notify: and siem: sections load, their file
// names resolve against the config's directory, the SIEM cursor defaults
// into the store, and bad values are refused naming their key.
func TestConfigNotifySIEM(t *testing.T) {
	dir := t.TempDir()
	load := func(yaml string) (gateway.Config, error) {
		p := filepath.Join(dir, "lexgate.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return gateway.LoadConfig(p)
	}
	cfg, err := load(`store: {dir: data}
notify:
  directory: people.yaml
  max_attempts: 3
  webhooks:
    - {name: soc, url: "https://soc.example/hook", secret_file: soc.secret, events: [transfer.refused]}
  email: {smtp: "smtp.example:587", from: lexgate@harbor-law.example, password_file: pw, username: lexgate}
siem:
  syslog: {addr: "siem.example:6514", ca_file: siem-ca.pem}
policy:
  decision_log_rotate: {max_size: 1048576, max_age: 1h}
`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Notify.Directory != filepath.Join(dir, "people.yaml") || cfg.Notify.Webhooks[0].SecretFile != filepath.Join(dir, "soc.secret") ||
		cfg.SIEM.Syslog.CAFile != filepath.Join(dir, "siem-ca.pem") || cfg.SIEM.Cursor != filepath.Join(dir, "data", "siem.cursor") ||
		cfg.Policy.DecisionLogRotate.MaxSize != 1<<20 || cfg.Notify.MaxAttempts != 3 {
		t.Errorf("config: %+v", cfg)
	}
	for _, tc := range []struct{ yaml, key string }{
		{"notify:\n  webhooks:\n    - {name: a, url: 'http://plain.example/', secret: whsec_AAAA}\n", "notify.webhooks[0].url"},
		{"notify:\n  webhooks:\n    - {name: a, url: 'https://x.example/', secret: nope}\n", "notify.webhooks[0].secret"},
		{"notify:\n  email: {smtp: 'smtp.example:25', from: a@b.example, tls: maybe}\n", "notify.email.tls"},
		{"notify:\n  bogus: 1\n", "bogus"},
		{"siem:\n  syslog: {addr: nohost}\n", "siem.syslog.addr"},
	} {
		if _, err := load(tc.yaml); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: %v, want an error naming %s", tc.yaml, err, tc.key)
		}
	}
}
