package gateway_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lexgate/lexgate/gateway"
)

// FuzzLoadConfig: a gateway config file from anywhere never panics the loader;
// what it accepts is valid, has every file path absolute (resolved against the
// file's directory), and written back as YAML loads as the same configuration.
func FuzzLoadConfig(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "lexgate.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := gateway.LoadConfig(path)
		if err != nil {
			return
		}
		paths := []string{c.Identity.SVIDCert, c.Identity.SVIDKey, c.Policy.Dir, c.Store.Dir, c.SFTP.HostKey, c.Audit.Dir, c.Audit.KeyFile}
		if c.Policy.DecisionLog != "off" {
			paths = append(paths, c.Policy.DecisionLog)
		}
		for _, p := range c.Identity.Bundles {
			paths = append(paths, p)
		}
		for _, p := range paths {
			if p != "" && !filepath.IsAbs(p) {
				t.Fatalf("accepted config %q leaves the path %q relative", data, p)
			}
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("accepted config does not encode: %v", err)
		}
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := gateway.LoadConfig(path)
		if err != nil {
			t.Fatalf("config %q written back as %q does not load: %v", data, out, err)
		}
		if out2, _ := yaml.Marshal(again); !bytes.Equal(out2, out) {
			t.Fatalf("config %q written back as %q loads as %q", data, out, out2)
		}
	})
}

// TestLoadConfigOneDocument: a second YAML document in the file is refused, not
// silently ignored (found by FuzzLoadConfig).
func TestLoadConfigOneDocument(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lexgate.yaml")
	doc := "identity:\n  svid_cert: a.crt\n  svid_key: a.key\n  bundles:\n    harbor-law.example: b.pem\n"
	if err := os.WriteFile(path, []byte(doc+"---\nlisten: 0.0.0.0:8443\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.LoadConfig(path); err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Fatalf("LoadConfig = %v, want the second document refused", err)
	}
}
