package cli_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// bigBundle makes a bundle with nested directories, an empty file and one large
// random file, and returns its root and each file's SHA-256 by relative path.
func bigBundle(t *testing.T, bigSize int) (string, map[string][32]byte) {
	root := filepath.Join(t.TempDir(), "HL-2026-0042")
	files := map[string][]byte{
		"pleadings/2026/03/statement-of-claim.txt": bytes.Repeat([]byte("The claimant says...\n"), 5000),
		"exhibits/empty-placeholder.txt":           {},
		"README.txt":                               []byte("index\n"),
	}
	for rel, data := range files {
		write(t, filepath.Join(root, rel), data)
	}
	sums := map[string][32]byte{}
	for rel, data := range files {
		sums[rel] = sha256.Sum256(data)
	}
	// The large file is written and hashed in chunks, never held whole.
	p := filepath.Join(root, "productions/vol-001.bin")
	os.MkdirAll(filepath.Dir(p), 0o755)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for left := bigSize; left > 0; left -= len(buf) {
		n := min(left, len(buf))
		rand.Read(buf[:n])
		f.Write(buf[:n])
		h.Write(buf[:n])
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sums["productions/vol-001.bin"] = [32]byte(h.Sum(nil))
	return root, sums
}

// arrivesWhole checks that the gateway holds exactly one transfer, ready,
// and that the review team receives from it the files of sums under the
// matter HL-2026-0042.
func arrivesWhole(t *testing.T, env *gatewaytest.Env, team, id string, sums map[string][32]byte) {
	t.Helper()
	if s := env.StoreStats(); s.Transfers != 1 || s.Ready != 1 {
		t.Fatalf("store %+v: want one ready transfer", s)
	}
	dest := t.TempDir()
	mustLex(t, team, "receive", id, "-o", dest)
	checkTree(t, filepath.Join(dest, "HL-2026-0042"), sums)
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkTree compares every file under dir with the expected hashes: same set, same bytes.
func checkTree(t *testing.T, dir string, want map[string][32]byte) {
	t.Helper()
	got := map[string][32]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = [32]byte(h.Sum(nil))
		return nil
	})
	if len(got) != len(want) {
		t.Errorf("received %d files, want %d: %v", len(got), len(want), keys(got))
	}
	for rel, sum := range want {
		if got[rel] != sum {
			t.Errorf("%s: received bytes differ or missing", rel)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sendID(t *testing.T, config string, args ...string) string {
	t.Helper()
	out := mustLex(t, config, append([]string{"send", "--json"}, args...)...)
	var res struct {
		ID      string `json:"id"`
		Resumed bool   `json:"resumed"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ID == "" {
		t.Fatalf("send printed %q: %v", out, err)
	}
	return res.ID
}

// TestGatewayLargeBundle sends nested directories, an empty file and a 200 MiB file
// over QUIC and, separately, over TCP with UDP unavailable; the bytes come back identical.
func TestGatewayLargeBundle(t *testing.T) {
	size := 200 << 20
	if testing.Short() {
		size = 8 << 20
	}
	root, sums := bigBundle(t, size)
	for _, tc := range []struct {
		name, want string
		opts       []gatewaytest.Option
	}{
		{"quic", "transport: quic (HTTP/3)", nil},
		{"tcp without udp", "transport: tcp (HTTP/2)", []gatewaytest.Option{gatewaytest.WithoutQUIC()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts == nil { // auto mode must pick QUIC, however slow its handshake
				defer cli.SetQUICTimeout(time.Minute)()
			}
			_, alice, team := setup(t, tc.opts...)
			code, out, errOut := lex(t, alice, "-v", "send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2026-0042", root)
			if code != 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("send: exit %d, want stderr with %q:\n%s", code, tc.want, errOut)
			}
			var res struct{ ID string }
			json.Unmarshal([]byte(out), &res)
			dest := filepath.Join(t.TempDir(), "in")
			code, _, errOut = lex(t, team, "-v", "receive", res.ID, "-o", dest)
			if code != 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("receive: exit %d, want stderr with %q:\n%s", code, tc.want, errOut)
			}
			checkTree(t, filepath.Join(dest, "HL-2026-0042"), sums)
		})
	}
}

// TestGatewayResumeAfterCut cuts the link at a random point of the upload; running
// the same lex send again resumes the same transfer and completes it.
func TestGatewayResumeAfterCut(t *testing.T) {
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 24<<20)
	seed := time.Now().UnixNano()
	cutAt := int64(2<<20) + mrand.New(mrand.NewPCG(uint64(seed), 0)).Int64N(20<<20)
	t.Logf("cutting the link after %d bytes (seed %d)", cutAt, seed)
	proxy := startCutProxy(t, env.Addr, cutAt)
	cfg, _ := os.ReadFile(alice)
	viaProxy := filepath.Join(filepath.Dir(alice), "via-proxy.yaml")
	write(t, viaProxy, bytes.Replace(cfg, []byte("gateway: "+env.Addr), []byte("gateway: "+proxy.addr()), 1))

	// --reconnect 1s: the link stays cut until this run gives up, as a user would.
	args := []string{"--transport", "tcp", "--reconnect", "1s", "send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2026-0042", "--chunk", "4MiB", root}
	code, _, errOut := lex(t, viaProxy, args...)
	if code != cli.ExitError {
		t.Fatalf("send over a cut link: exit %d, want %d\n%s", code, cli.ExitError, errOut)
	}
	var held int64
	waitUntil(t, func() bool {
		s := env.StoreStats()
		held = s.SpoolBytes
		return s.Transfers == 1 && s.Uploading == 1
	}, "the gateway to hold a partial upload")
	t.Logf("the gateway holds %d bytes after the cut", held)

	proxy.heal() // the link comes back; the user runs the same command again
	code, out, errOut := lex(t, viaProxy, args...)
	if code != 0 || !strings.Contains(errOut, "resuming an interrupted send") {
		t.Fatalf("second send: exit %d\nstderr: %s\nstdout: %s", code, errOut, out)
	}
	var res struct {
		ID      string
		Resumed bool
	}
	json.Unmarshal([]byte(out), &res)
	if s := env.StoreStats(); !res.Resumed || s.Transfers != 1 || s.Ready != 1 {
		t.Fatalf("resumed %v, store %+v: want one ready transfer", res.Resumed, s)
	}
	dest := t.TempDir()
	mustLex(t, team, "receive", res.ID, "-o", dest)
	checkTree(t, filepath.Join(dest, "HL-2026-0042"), sums)
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func assertNothingDelivered(t *testing.T, dest string) {
	t.Helper()
	ents, err := os.ReadDir(dest)
	if err == nil && len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("%s holds %v after a refused receive", dest, names)
	}
}

// TestGatewayMaliciousBundle: a sender with a valid SVID sends, through the real
// gateway, bundles whose tar tries to escape the output directory; lex receive
// refuses each and writes nothing, inside or outside the output directory.
func TestGatewayMaliciousBundle(t *testing.T) {
	env, _, team := setup(t)
	alice := newRawClient(t, env, gatewaytest.Alice)
	outside := filepath.Join(t.TempDir(), "outside")
	cases := []struct {
		name  string
		entry tar.Header
		body  string
	}{
		{"dot-dot", tar.Header{Name: "../x", Typeflag: tar.TypeReg, Mode: 0o644}, "escaped"},
		{"absolute", tar.Header{Name: outside + "/abs.txt", Typeflag: tar.TypeReg, Mode: 0o644}, "escaped"},
		{"symlink escaping", tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside, Mode: 0o777}, ""},
		{"nested dot-dot", tar.Header{Name: "a/../../y", Typeflag: tar.TypeReg, Mode: 0o644}, "escaped"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := alice.sendRaw(gatewaytest.Team, evilTar(t, c.entry, c.body), 1)
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			code, _, errOut := lex(t, team, "receive", id, "-o", dest)
			if code != cli.ExitError {
				t.Fatalf("exit %d, want %d; stderr %q", code, cli.ExitError, errOut)
			}
			assertNothingDelivered(t, dest)
			if ents, _ := os.ReadDir(parent); len(ents) > 1 {
				t.Errorf("receive wrote beside the output directory: %v", ents)
			}
			if _, err := os.Lstat(outside); err == nil {
				t.Errorf("receive wrote %s", outside)
			}
		})
	}
}

// evilTar is a bundle whose one entry is hdr, with an inner manifest that lists it,
// so only the path rule can refuse it.
func evilTar(t *testing.T, hdr tar.Header, body string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr.Size = int64(len(body))
	if hdr.Typeflag != tar.TypeReg {
		hdr.Size = 0
	}
	hdr.ModTime = time.Unix(0, 0)
	if err := tw.WriteHeader(&hdr); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tw, body)
	sum := sha256.Sum256([]byte(body))
	m, _ := json.Marshal(cli.BundleManifest{Version: 1, Files: []cli.BundleFile{{Path: hdr.Name, Size: hdr.Size, SHA256: hex.EncodeToString(sum[:])}}})
	tw.WriteHeader(&tar.Header{Name: cli.BundleManifestName, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(m)), ModTime: time.Unix(0, 0)})
	tw.Write(m)
	tw.Close()
	return buf.Bytes()
}

// TestGatewayAgeCLIInterop: the ciphertext the gateway delivers decrypts with the
// stock age CLI and the identity file lex keygen wrote.
func TestGatewayAgeCLIInterop(t *testing.T) {
	env, alice, team := setup(t)
	folder := caseFolder(t)
	id := sendID(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2026-0042", folder)
	st, ct := newRawClient(t, env, gatewaytest.Team).do(http.MethodGet, api.PathTransfer+id+"/content", nil)
	if st != http.StatusOK {
		t.Fatalf("download: %d", st)
	}
	ctFile := filepath.Join(t.TempDir(), "delivery.age")
	write(t, ctFile, ct)
	identity := filepath.Join(filepath.Dir(team), "identity.age")
	cmd := exec.Command("go", "tool", "age", "-d", "-i", identity, ctFile)
	cmd.Dir = moduleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	plain, err := cmd.Output()
	if err != nil {
		if os.Getenv("CI") != "true" && strings.Contains(stderr.String(), "no such tool") {
			t.Skipf("go tool age unavailable: %s", stderr.String())
		}
		t.Fatalf("go tool age -d: %v\n%s", err, stderr.String())
	}
	want, _ := os.ReadFile(filepath.Join(folder, "depositions", "smith.txt"))
	tr := tar.NewReader(bytes.NewReader(plain))
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Name == "HL-2025-001/depositions/smith.txt" {
			got, _ := io.ReadAll(tr)
			found = bytes.Equal(got, want)
		}
	}
	if !found {
		t.Fatal("the age CLI's plaintext does not hold the sent file")
	}
}

func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// TestGatewayHandshakeErrors: a handshake that fails, on either side, gives the
// user a sentence that says which side refused and what to check.
func TestGatewayHandshakeErrors(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithRevoked(gatewaytest.DMS))
	alice := env.ClientConfig(gatewaytest.Alice)
	home := filepath.Dir(alice)
	cfg, _ := os.ReadFile(alice)
	variant := func(name string, from, to string) string {
		p := filepath.Join(home, name+".yaml")
		write(t, p, bytes.Replace(cfg, []byte(from), []byte(to), 1))
		return p
	}
	harborCA, err := certs.LoadCA(filepath.Join(env.PKI, "harbor-law.example"))
	if err != nil {
		t.Fatal(err)
	}
	rogueCA, err := certs.NewCA(spiffeid.RequireTrustDomainFromString("harbor-law.example"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	aliceID := spiffeid.RequireFromString(gatewaytest.Alice)
	svidConfig := func(name string, ca *certs.CA, o certs.SVIDOptions) string {
		s, err := ca.MintSVID(aliceID, o)
		if err != nil {
			t.Fatal(err)
		}
		crt, key := filepath.Join(home, name+".crt"), filepath.Join(home, name+".key")
		if err := certs.WriteSVID(crt, key, s); err != nil {
			t.Fatal(err)
		}
		c, k := env.SVIDFiles(gatewaytest.Alice)
		p := filepath.Join(home, name+".yaml")
		write(t, p, []byte(strings.NewReplacer(c, crt, k, key).Replace(string(cfg))))
		return p
	}
	cases := []struct {
		name, config, want string
	}{
		{"wrong gateway_id", variant("wrong-id", gatewaytest.GatewayID, "spiffe://harbor-law.example/not-the-gateway"),
			"the gateway's certificate is not spiffe://harbor-law.example/not-the-gateway"},
		{"SVID from a rogue CA", svidConfig("rogue", rogueCA, certs.SVIDOptions{}), "the gateway refused our certificate"},
		{"expired SVID", svidConfig("expired", harborCA, certs.SVIDOptions{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}),
			"expired.crt) expired on " + time.Now().Add(-time.Hour).UTC().Format("2006-01-02")},
		{"revoked identity", env.ClientConfig(gatewaytest.DMS), "the gateway refused our certificate"},
	}
	for _, c := range cases {
		for _, transport := range []string{"quic", "tcp"} {
			t.Run(c.name+"/"+transport, func(t *testing.T) {
				code, _, errOut := lex(t, c.config, "--transport", transport, "inbox")
				if code != cli.ExitError || !strings.Contains(errOut, c.want) {
					t.Errorf("exit %d, stderr %q; want %q", code, errOut, c.want)
				}
			})
		}
	}
}
