package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), args, nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsageErrors(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "missing.yaml")
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr, or stdout for exit 0
	}{
		{nil, ExitUsage, "usage: lex"},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{[]string{"--bogus", "inbox"}, ExitUsage, "flag provided but not defined"},
		{[]string{"--transport", "udp", "inbox"}, ExitUsage, `--transport "udp"`},
		{[]string{"send", "--matter", "M", "x"}, ExitUsage, "--to is required"},
		{[]string{"send", "--to", aliceID, "x"}, ExitUsage, "--matter is required"},
		{[]string{"send", "--to", aliceID, "--matter", "M"}, ExitUsage, "at least one file"},
		{[]string{"send", "--to", "alice", "--matter", "M", "x"}, ExitUsage, "not a SPIFFE ID"},
		{[]string{"send", "--to", aliceID, "--matter", "M", "--chunk", "0", "x"}, ExitUsage, "--chunk"},
		{[]string{"send", "--to", aliceID, "--matter", "M", "--chunk", "32KiB", "x"}, ExitUsage, "whole age header"},
		{[]string{"send", "--nope"}, ExitUsage, "flag provided but not defined"},
		{[]string{"receive", "t1"}, ExitUsage, "-o DIR is required"},
		{[]string{"receive", "-o", "d"}, ExitUsage, "exactly one transfer ID"},
		{[]string{"receive", "t1", "t2", "-o", "d"}, ExitUsage, "exactly one transfer ID"},
		{[]string{"receive", "../etc", "-o", "d"}, ExitUsage, "not a transfer ID"},
		{[]string{"ack"}, ExitUsage, "exactly one transfer ID"},
		{[]string{"keys"}, ExitUsage, "exactly one SPIFFE ID"},
		{[]string{"keys", "https://example.com"}, ExitUsage, "not a SPIFFE ID"},
		{[]string{"inbox", "extra"}, ExitUsage, "unexpected argument"},
		{[]string{"keygen", "extra"}, ExitUsage, "unexpected argument"},
		{[]string{"help", "nope"}, ExitUsage, "unknown command"},
		{[]string{"-h"}, ExitOK, "usage: lex"},
		{[]string{"help"}, ExitOK, "commands:"},
		{[]string{"help", "send"}, ExitOK, "--matter M"},
		{[]string{"help", "config"}, ExitOK, "gateway_id:"},
		{[]string{"receive", "-h"}, ExitOK, "usage: lex receive"},
		{[]string{"--config", cfg, "inbox"}, ExitError, "does not exist"},
	} {
		code, out, errOut := run(t, tc.args...)
		got := errOut
		if tc.code == ExitOK {
			got = out
		}
		if code != tc.code || !strings.Contains(got, tc.want) {
			t.Errorf("lex %q: exit %d, want %d; output %q, want %q", tc.args, code, tc.code, got, tc.want)
		}
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	fs := newFlagSet("t")
	o := fs.String("o", "", "")
	pos, err := parseArgs(fs, []string{"id1", "-o", "dir", "--", "-x"})
	if err != nil || *o != "dir" || strings.Join(pos, " ") != "id1 -x" {
		t.Errorf("pos %q, o %q, err %v", pos, *o, err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "64KiB": 64 << 10, "256MiB": 256 << 20, "1g": 1 << 30, "8 MB": 8 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1TB", "lots", "99999999999G"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("identity: keys/me.age\n"), 0o600)
	idPath := filepath.Join(dir, "keys", "me.age")

	code, out, errOut := run(t, "--config", cfg, "keygen")
	if code != 0 || !strings.HasPrefix(out, "age1pq1") {
		t.Fatalf("keygen: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	fi, err := os.Stat(idPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v, mode %v", err, fi.Mode().Perm())
	}
	first, _ := os.ReadFile(idPath)
	ids, err := age.ParseIdentities(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := identityRecipients(ids); r[0] != strings.TrimSpace(out) {
		t.Errorf("printed %q, file's recipient %q", out, r[0])
	}

	code, _, errOut = run(t, "--config", cfg, "keygen")
	if code != ExitError || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "--force") {
		t.Errorf("second keygen: exit %d, stderr %q", code, errOut)
	}
	if now, _ := os.ReadFile(idPath); !bytes.Equal(now, first) {
		t.Error("identity overwritten without --force")
	}

	code, out, _ = run(t, "--config", cfg, "keygen", "--x25519", "--force", "--json")
	if code != 0 || !strings.Contains(out, `"recipient": "age1`) || strings.Contains(out, "age1pq1") {
		t.Errorf("keygen --x25519 --force: exit %d, %q", code, out)
	}
	if fi, _ := os.Stat(idPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after --force %v", fi.Mode().Perm())
	}
	if now, _ := os.ReadFile(idPath); bytes.Equal(now, first) {
		t.Error("--force did not replace the identity")
	}
}

func TestKeygenWithoutConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LEX_CONFIG", filepath.Join(dir, "lex", "config.yaml"))
	if code, _, errOut := run(t, "keygen"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "lex", "identity.age")); err != nil {
		t.Error(err)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "config.yaml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	c, err := LoadConfig(write(`
gateway: 127.0.0.1:8443
gateway_id: spiffe://harbor-law.example/gateway
svid_cert: alice.crt
svid_key: /abs/alice.key
bundles: {harbor-law.example: harbor-law.example/bundle.pem}
cache_dir: cache
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.SVIDCert != filepath.Join(dir, "alice.crt") || c.SVIDKey != "/abs/alice.key" ||
		c.Bundles["harbor-law.example"] != filepath.Join(dir, "harbor-law.example", "bundle.pem") ||
		c.Identity != filepath.Join(dir, "identity.age") || c.CacheDir != filepath.Join(dir, "cache") {
		t.Errorf("paths not resolved: %+v", c)
	}
	if err := c.checkNetwork(); err != nil {
		t.Error(err)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"gateway: a:1\ngatway_id: x\n", `:2: unknown key "gatway_id" (did you mean "gateway_id"?)`},
		{"gateway: [\n", "config " + filepath.Join(dir, "config.yaml")},
		{"bundles: 3\n", "cannot unmarshal"},
	} {
		if _, err := LoadConfig(write(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
	for _, tc := range []struct{ yaml, want string }{
		{"gateway: a:1\n", "missing gateway_id, svid_cert, svid_key, bundles"},
		{"gateway: nohost\ngateway_id: spiffe://a.example/g\nsvid_cert: c\nsvid_key: k\nbundles: {a.example: b}\n", "want host:port"},
		{"gateway: h:1\ngateway_id: https://a.example/g\nsvid_cert: c\nsvid_key: k\nbundles: {a.example: b}\n", "gateway_id"},
	} {
		c, err := LoadConfig(write(tc.yaml))
		if err == nil {
			err = c.checkNetwork()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.yaml, err, tc.want)
		}
	}
	_, err = LoadConfig(filepath.Join(dir, "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml does not exist") {
		t.Errorf("missing file: %v", err)
	}
	// A config whose certificate files are missing fails with the path in the message.
	p := write("gateway: h:1\ngateway_id: spiffe://a.example/g\nsvid_cert: c.pem\nsvid_key: k.pem\nbundles: {a.example: b.pem}\n")
	if code, _, errOut := run(t, "--config", p, "inbox"); code != ExitError || !strings.Contains(errOut, "c.pem") {
		t.Errorf("missing SVID: exit %d, %q", code, errOut)
	}
}

// TestInteropAgeCLI checks that what lex send encrypts decrypts with the stock age
// CLI (go tool age) and the identity file lex keygen writes.
func TestInteropAgeCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the age CLI")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	probe := exec.Command("go", "tool", "age", "--version")
	probe.Dir = root
	if out, err := probe.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go tool age unavailable under CI: %v\n%s", err, out)
		}
		t.Skipf("go tool age unavailable: %v\n%s", err, out)
	}
	for _, x25519 := range []bool{false, true} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "config.yaml")
		os.WriteFile(cfg, nil, 0o600)
		args := []string{"--config", cfg, "keygen"}
		if x25519 {
			args = append(args, "--x25519")
		}
		code, out, errOut := run(t, args...)
		if code != 0 {
			t.Fatalf("keygen: %s", errOut)
		}
		r, _, err := parseRecipient(strings.TrimSpace(out))
		if err != nil {
			t.Fatal(err)
		}
		paths := sampleTree(t)
		in, err := collectInputs(paths)
		if err != nil {
			t.Fatal(err)
		}
		spool := filepath.Join(dir, "out.age")
		if _, _, err := encryptToSpool(t.Context(), spool, in, []age.Recipient{r}, nil); err != nil {
			t.Fatal(err)
		}
		plain := filepath.Join(dir, "out.tar")
		cmd := exec.Command("go", "tool", "age", "-d", "-i", filepath.Join(dir, "identity.age"), "-o", plain, spool)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("age -d: %v\n%s", err, out)
		}
		got, _ := os.ReadFile(plain)
		want, _ := bundleBytes(t, paths)
		if !bytes.Equal(got, want) {
			t.Errorf("x25519=%v: age CLI decrypted %d bytes, not the bundle (%d bytes)", x25519, len(got), len(want))
		}
	}
}

func TestRenderBar(t *testing.T) {
	for _, tc := range []struct {
		n, total int64
		want     string
	}{
		{0, 2048, "sending    [>         ]   0% 0 B / 2.0 KiB"},
		{1024, 2048, "sending    [=====>    ]  50% 1.0 KiB / 2.0 KiB"},
		{4096, 2048, "sending    [==========] 100% 4.0 KiB / 2.0 KiB"},
	} {
		if got := renderBar("sending", tc.n, tc.total, 10); got != tc.want {
			t.Errorf("renderBar(%d, %d) = %q, want %q", tc.n, tc.total, got, tc.want)
		}
	}
	if p := newProgress(&bytes.Buffer{}, "x", 1, 0); p != nil {
		t.Error("progress bar on a non-terminal")
	}
}
