package cli

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseConfig: a lex config file from anywhere never panics the parser;
// what it accepts has every path absolute (resolved against the file's
// directory), and written back as YAML it reads as the same configuration.
func FuzzParseConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "/home/paralegal/.config/lex/config.yaml"
		c, err := parseConfig(data, path)
		if err != nil {
			return
		}
		paths := []string{c.Identity, c.CacheDir}
		if c.SVIDCert != "" || c.SVIDKey != "" {
			paths = append(paths, c.SVIDCert, c.SVIDKey)
		}
		for _, p := range c.Bundles {
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
		again, err := parseConfig(out, path)
		if err != nil {
			t.Fatalf("config %q written back as %q does not parse: %v", data, out, err)
		}
		if out2, _ := yaml.Marshal(again); !bytes.Equal(out2, out) {
			t.Fatalf("config %q written back as %q reads as %q", data, out, out2)
		}
	})
}

// FuzzSendTo: lex send --to (a comma-separated list) accepts exactly the
// canonical spelling of each SPIFFE ID, so the recipients a paralegal typed are
// the ones the manifest names, byte for byte.
func FuzzSendTo(f *testing.F) {
	f.Fuzz(func(t *testing.T, to string) {
		o, _, err := parseSendArgs([]string{"--to", to, "--matter", "HL-2026-0042", "brief.pdf"})
		if err != nil {
			return
		}
		var typed []string
		for _, s := range strings.Split(to, ",") {
			if s = strings.TrimSpace(s); s != "" {
				typed = append(typed, s)
			}
		}
		if len(o.to) != len(typed) {
			t.Fatalf("--to %q became %v", to, o.to)
		}
		for i, id := range o.to {
			if id.String() != typed[i] {
				t.Fatalf("--to %q: %q became %s", to, typed[i], id)
			}
		}
	})
}

// FuzzParseSize: a size flag is positive, at most 2^62, and its plain number of
// bytes reads back as itself.
func FuzzParseSize(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		n, err := parseSize(v)
		if err != nil {
			return
		}
		if n <= 0 || n > 1<<62 {
			t.Fatalf("parseSize(%q) = %d", v, n)
		}
		if again, err := parseSize(strconv.FormatInt(n, 10)); err != nil || again != n {
			t.Fatalf("parseSize(%q) = %d, which reads back as %d, %v", v, n, again, err)
		}
	})
}

// TestParseConfigOneDocument: a second YAML document in the file is refused, not
// silently ignored (found by FuzzParseConfig).
func TestParseConfigOneDocument(t *testing.T) {
	_, err := parseConfig([]byte("gateway: a:8443\n---\ngateway: b:8443\n"), "/x/config.yaml")
	if err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Fatalf("parseConfig = %v, want the second document refused", err)
	}
}
