package gateway_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// TestConfigMarshalRoundTrip: a config written with Config.Marshal reads back
// through LoadConfig as the same config, and says only what differs from the
// defaults.
func TestConfigMarshalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c := gateway.DevConfig(filepath.Join(dir, "pki"), filepath.Join(dir, "data"))
	c.ShutdownGrace = 5 * time.Second
	c.Limits.MaxPreAuthPerAddr = 1024
	c.Transfer.PurgeOnAck = true
	c.Log.Format = "json"
	c.SFTP = sftpfront.Config{Listen: "127.0.0.1:0", Recipients: map[string]string{"team": "spiffe://manila-lpo.example/site/review-team"},
		Accounts: []sftpfront.Account{{Name: "dms", ID: "spiffe://harbor-law.example/legacy/dms",
			AuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1MVopOSYD0dHPw7Q9lkyfe0jfYvLvbio/lDDgrowWK dms"}, Matter: "HL-2026-0042"}}}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"disable_quic", "gc:", "policy:", "audit:", `""`, ": 0\n", "false"} {
		if strings.Contains(string(b), absent) {
			t.Errorf("the generated config holds %q, a default:\n%s", absent, b)
		}
	}
	path := filepath.Join(dir, "lexgate.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := gateway.LoadConfig(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	want := c
	// LoadConfig fills the defaults the file left out: compare with the same.
	want.Admin, want.Listen = got.Admin, got.Listen
	want.GC, want.Limits, want.Policy, want.Audit = got.GC, got.Limits, got.Policy, got.Audit
	if got.Limits.MaxPreAuthPerAddr != 1024 || got.ShutdownGrace != 5*time.Second || !got.Transfer.PurgeOnAck ||
		!reflect.DeepEqual(got.Identity, want.Identity) || !reflect.DeepEqual(got.SFTP, want.SFTP) || got.Store != want.Store {
		t.Errorf("read back:\n%+v\nwant:\n%+v\nfrom:\n%s", got, want, b)
	}
}
