package ssotest_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/ssotest"
)

const harbor = "harbor-law.example"

func lex(t testing.TB, config string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), append([]string{"--config", config}, args...), nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustLex(t testing.TB, config string, args ...string) string {
	t.Helper()
	code, out, errOut := lex(t, config, args...)
	if code != 0 {
		t.Fatalf("lex %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// login runs lex login for config and plays the browser as user; it
// returns lex's exit code and output.
func login(t *testing.T, h *ssotest.Hydra, config, user string) (int, string, string) {
	t.Helper()
	pr, pw := io.Pipe()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := cli.Main(t.Context(), []string{"--config", config, "login", "--browser"}, nil, &stdout, io.MultiWriter(&stderr, pw))
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	browsed := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !browsed && strings.HasPrefix(line, "http") {
			browsed = true
			go func() { // the browser: its errors show in lex's outcome
				if _, err := h.Browse(line, user); err != nil {
					t.Logf("browser: %v", err)
				}
			}()
		}
	}
	code := <-done
	return code, stdout.String(), stderr.String()
}

// startGateway starts a gateway of harbor-law.example whose bundle holds
// both roots, the workloads' and the people CA's; everyone (the gateway,
// the partner's lex) trusts that file.
func startGateway(t *testing.T, ca *ssotest.StepCA) *gatewaytest.Env {
	return gatewaytest.Start(t, gatewaytest.WithoutQUIC(), gatewaytest.WithConfig(func(c *gateway.Config) {
		a, _ := os.ReadFile(c.Identity.Bundles[harbor])
		b, _ := os.ReadFile(ca.Root)
		os.WriteFile(c.Identity.Bundles[harbor], append(a, b...), 0o644)
	}))
}

// personConfig writes the lex config of a person of harbor-law.example
// who signs in with issuer and ca; loginExtra adds lines to its login
// section.
func personConfig(t *testing.T, env *gatewaytest.Env, issuer string, ca *ssotest.StepCA, name, loginExtra string) string {
	t.Helper()
	home := filepath.Join(env.Dir, "people", name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "gateway: %s\ngateway_id: %s\nidentity: %s\ncache_dir: %s\nlog_key: %s\n", env.Addr, gatewaytest.GatewayID,
		filepath.Join(home, "identity.age"), filepath.Join(home, "cache"), env.Gateway.LogKey())
	fmt.Fprintf(&b, "login:\n  issuer: %s\n  client_id: %s\n  ca_url: %s\n  ca_root: %s\n%sbundles:\n", issuer, ssotest.ClientID, ca.URL, ca.Root, loginExtra)
	for td, p := range env.Bundles() {
		fmt.Fprintf(&b, "  %s: %s\n", td, p)
	}
	path := filepath.Join(home, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sendAsPerson sends a folder from the person's config to the team of
// manila-lpo.example (whose lex registers here) and checks that the team
// receives it signed by the person.
func sendAsPerson(t *testing.T, env *gatewaytest.Env, config, person string) {
	t.Helper()
	team := env.ClientConfig(gatewaytest.Team)
	for _, c := range []string{config, team} {
		mustLex(t, c, "keygen")
		mustLex(t, c, "register")
	}
	folder := filepath.Join(t.TempDir(), "HL-2026-0042")
	os.MkdirAll(folder, 0o755)
	os.WriteFile(filepath.Join(folder, "memo.txt"), []byte("privileged\n"), 0o644)
	var sent struct{ ID string }
	if err := json.Unmarshal([]byte(mustLex(t, config, "send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2026-0042", folder)), &sent); err != nil {
		t.Fatal(err)
	}
	want := "from spiffe://harbor-law.example/person/" + person + " (signature verified)"
	if got := mustLex(t, team, "receive", sent.ID, "-o", t.TempDir()); !strings.Contains(got, want) {
		t.Errorf("receive printed %q, want %q", got, want)
	}
}

// TestLogin: lex login signs a person in with the firm's OpenID Connect
// provider (authorization code, PKCE, loopback redirect) and gets a person
// SVID from step-ca for a key made on the laptop; the person then sends
// with it. Without a second factor, or once removed from the directory,
// no certificate; an expired one, or none after lex logout, makes lex say
// "run lex login" with its own exit code.
func TestLogin(t *testing.T) {
	h := ssotest.StartHydra(t)
	h.Users["alice"] = ssotest.User{Subject: "alice", AMR: []string{"pwd", "otp"}, Groups: []string{"paralegals"}}
	h.Users["bob"] = ssotest.User{Subject: "bob", AMR: []string{"pwd"}}
	h.Users["carol"] = ssotest.User{Subject: "carol", AMR: []string{"pwd", "otp"}}
	ca := ssotest.StartStepCA(t, h.Issuer, 8*time.Hour)
	env := startGateway(t, ca)
	person := func(name string) string { return personConfig(t, env, h.Issuer, ca, name, "") }
	alice, bob, carol := person("alice"), person("bob"), person("carol")

	if code, _, errOut := lex(t, alice, "inbox"); code != cli.ExitLogin || !strings.Contains(errOut, "run lex login") {
		t.Fatalf("before login: exit %d %q, want %d and \"run lex login\"", code, errOut, cli.ExitLogin)
	}
	code, out, errOut := login(t, h, alice, "alice")
	if code != 0 || !strings.Contains(out, "signed in as spiffe://harbor-law.example/person/alice until") {
		t.Fatalf("lex login: exit %d\n%s\n%s", code, out, errOut)
	}
	certPath := filepath.Join(filepath.Dir(alice), "login", "person.crt")
	keyPath := filepath.Join(filepath.Dir(alice), "login", "person.key")
	for _, p := range []string{certPath, keyPath} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v, want 0600", p, err, fi.Mode().Perm())
		}
	}
	svid, err := certs.LoadSVID(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if lt := svid.Certificates[0].NotAfter.Sub(svid.Certificates[0].NotBefore); lt > 8*time.Hour+2*time.Minute {
		t.Errorf("person certificate lives %v, want 8h", lt)
	}

	// A send with the person SVID.
	sendAsPerson(t, env, alice, "alice")

	// No second factor: lex refuses the token (login.mfa_amr); the device
	// test shows that step-ca's template refuses it too.
	if code, _, errOut := login(t, h, bob, "bob"); code != cli.ExitError || !strings.Contains(errOut, "multi-factor authentication is required") {
		t.Errorf("login without MFA: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(env.Dir, "people", "bob", "login", "person.crt")); err == nil {
		t.Error("bob got a certificate without a second factor")
	}
	// Carol signs in, leaves the firm (removed from the directory), and
	// cannot sign in again.
	if code, _, errOut := login(t, h, carol, "carol"); code != 0 {
		t.Fatalf("carol's first login: exit %d\n%s", code, errOut)
	}
	delete(h.Users, "carol")
	mustLex(t, carol, "logout")
	if code, _, errOut := login(t, h, carol, "carol"); code != cli.ExitError || !strings.Contains(errOut, "the identity provider refused the sign-in: access_denied") {
		t.Errorf("login of a removed user: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(env.Dir, "people", "carol", "login", "person.crt")); err == nil {
		t.Error("a removed user got a certificate")
	}

	// An expired sign-in.
	peopleCA, err := certs.NewCA(spiffeid.RequireTrustDomainFromString(harbor), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	old, err := peopleCA.MintSVID(spiffeid.RequireFromString("spiffe://harbor-law.example/person/alice"),
		certs.SVIDOptions{NotBefore: time.Now().Add(-9 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteSVID(certPath, keyPath, old); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := lex(t, alice, "inbox"); code != cli.ExitLogin || !strings.Contains(errOut, "expired") || !strings.Contains(errOut, "run lex login") {
		t.Errorf("expired sign-in: exit %d %q", code, errOut)
	}
	if out := mustLex(t, alice, "logout"); !strings.Contains(out, "signed out") {
		t.Errorf("logout printed %q", out)
	}
	if _, err := os.Stat(certPath); err == nil {
		t.Error("lex logout left the certificate")
	}
	if code, _, errOut := lex(t, alice, "inbox"); code != cli.ExitLogin || !strings.Contains(errOut, "not signed in") {
		t.Errorf("after logout: exit %d %q", code, errOut)
	}
}

// TestExampleLexConfig: examples/step-ca/lex.yaml loads, with its login section.
func TestExampleLexConfig(t *testing.T) {
	path, err := filepath.Abs(filepath.Join("..", "..", "examples", "step-ca", "lex.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cli.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Login == nil || c.Login.Issuer == "" || !filepath.IsAbs(c.Login.CARoot) || !filepath.IsAbs(c.Login.Dir) {
		t.Errorf("login section: %+v", c.Login)
	}
}
