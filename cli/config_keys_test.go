package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestRefusesExposedKeyFiles: lex refuses a config whose svid_key or age
// identity group or others can read, naming the file and the chmod that fixes
// it, before it uses either; at 0600 the same command goes on to the network.
func TestRefusesExposedKeyFiles(t *testing.T) {
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if err := certs.MintDev(pki, certs.DefaultDevSpec()); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(pki, "harbor-law.example", "paralegal-alice.key")
	identity := filepath.Join(dir, "identity.age")
	cfg := filepath.Join(dir, "config.yaml")
	body := "gateway: 127.0.0.1:1\ngateway_id: " + gatewaytest.GatewayID + "\nsvid_cert: " + strings.TrimSuffix(key, ".key") + ".crt\nsvid_key: " + key +
		"\nidentity: " + identity + "\ncache_dir: " + filepath.Join(dir, "cache") + "\nbundles: {harbor-law.example: " + filepath.Join(pki, "harbor-law.example", "bundle.pem") + "}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "--config", cfg, "keygen"); code != ExitOK {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	for _, tc := range []struct {
		file string
		mode os.FileMode
	}{{key, 0o644}, {key, 0o640}, {identity, 0o644}, {identity, 0o604}} {
		if err := os.Chmod(tc.file, tc.mode); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := run(t, "--config", cfg, "inbox")
		if code != ExitError || !strings.Contains(errOut, "chmod 600 "+tc.file) {
			t.Errorf("%s at %04o: exit %d, stderr %q; want a refusal naming chmod 600 %s", tc.file, tc.mode, code, errOut, tc.file)
		}
		if err := os.Chmod(tc.file, 0o600); err != nil {
			t.Fatal(err)
		}
		// Now it gets as far as the network (nothing listens at 127.0.0.1:1).
		if _, _, errOut := run(t, "--config", cfg, "inbox"); strings.Contains(errOut, "chmod") {
			t.Errorf("after chmod 600 %s: still refused: %s", tc.file, errOut)
		}
	}
}
