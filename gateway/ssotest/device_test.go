package ssotest_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/ssotest"
)

var userCodeLine = regexp.MustCompile(`enter the code:\s+(\S+)`)

// deviceLogin runs lex login --device for config and, once lex printed
// the verification address and the user code, plays the person on
// another device: approve (allow true or false) as user, or nothing (user
// ""). With afterPending, lex runs with -v and the person acts only once
// lex said the provider answered authorization_pending. It returns lex's
// exit code and output. loginFlags, when not nil, replace --device.
func deviceLogin(t *testing.T, op *ssotest.OP, config, user string, allow, afterPending bool, loginFlags ...string) (int, string, string) {
	t.Helper()
	pr, pw := io.Pipe()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if loginFlags == nil {
		loginFlags = []string{"--device"}
	}
	args := append([]string{"--config", config, "login"}, loginFlags...)
	if afterPending {
		args = append([]string{"-v"}, args...)
	}
	go func() {
		code := cli.Main(ctx, args, nil, &stdout, io.MultiWriter(&stderr, pw))
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	var uri, userCode string
	acted := user == ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := userCodeLine.FindStringSubmatch(line); m != nil {
			userCode = m[1]
		} else if uri == "" && strings.HasPrefix(line, "http") {
			uri = line
		}
		ready := userCode != "" && (!afterPending || strings.Contains(line, "answered authorization_pending"))
		if !acted && ready {
			acted = true
			if err := op.ApproveDevice(uri, userCode, user, allow); err != nil {
				t.Errorf("approving on the device page: %v", err)
				cancel() // lex would wait for the code to expire
			}
		}
	}
	code := <-done
	return code, stdout.String(), stderr.String()
}

// assertNothingStored fails if lex stored a certificate or key for config.
func assertNothingStored(t *testing.T, config string) {
	t.Helper()
	for _, f := range []string{"person.crt", "person.key"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(config), "login", f)); err == nil {
			t.Errorf("%s stored %s", config, f)
		}
	}
}

// TestDeviceLogin: lex login --device (OAuth 2.0 Device Authorization
// Grant, RFC 8628) against a real provider (zitadel/oidc's OP) whose
// device pages the test drives over HTTP, and a real step-ca: approved,
// the person gets an 8-hour person SVID stored 0600 and sends with it;
// denied, or without a second factor (refused by lex, and by step-ca's
// template when lex's check is loosened), or with a code left to expire,
// lex says so and stores nothing.
func TestDeviceLogin(t *testing.T) {
	users := map[string]ssotest.OPUser{
		"alice": {Password: "alice-secret", AMR: []string{"pwd", "otp"}},
		"bob":   {Password: "bob-secret", AMR: []string{"pwd"}},
		"dana":  {Password: "dana-secret", AMR: []string{"pwd", "otp"}},
		"erin":  {Password: "erin-secret", AMR: []string{"pwd", "otp"}},
	}
	op := ssotest.StartOP(t, users, 0)
	ca := ssotest.StartStepCA(t, op.Issuer, 8*time.Hour)
	env := startGateway(t, ca)
	alice := personConfig(t, env, op.Issuer, ca, "alice", "")

	code, out, errOut := deviceLogin(t, op, alice, "alice", true, false)
	if code != 0 || !strings.Contains(out, "signed in as spiffe://harbor-law.example/person/alice until") {
		t.Fatalf("lex login --device: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, op.Issuer+"/device\n") || !userCodeLine.MatchString(errOut) {
		t.Errorf("lex did not print the verification address and code on stderr:\n%s", errOut)
	}
	certPath := filepath.Join(filepath.Dir(alice), "login", "person.crt")
	keyPath := filepath.Join(filepath.Dir(alice), "login", "person.key")
	for _, p := range []string{certPath, keyPath} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, want mode 0600", p, err)
		}
	}
	svid, err := certs.LoadSVID(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if lt := svid.Certificates[0].NotAfter.Sub(svid.Certificates[0].NotBefore); lt > 8*time.Hour+2*time.Minute || lt < 8*time.Hour-2*time.Minute {
		t.Errorf("person certificate lives %v, want 8h", lt)
	}
	sendAsPerson(t, env, alice, "alice")

	// In an SSH session without a display, plain lex login picks the
	// device grant by itself and says why.
	t.Setenv("SSH_CONNECTION", "192.0.2.7 50022 192.0.2.8 22")
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	erin := personConfig(t, env, op.Issuer, ca, "erin", "")
	if code, out, errOut := deviceLogin(t, op, erin, "erin", true, false, []string{}...); code != 0 ||
		!strings.Contains(out, "signed in as spiffe://harbor-law.example/person/erin until") ||
		!strings.Contains(errOut, "this is an SSH session without a display: signing in with a code (lex login --browser for the redirect)") {
		t.Errorf("lex login in an SSH session: exit %d\n%s\n%s", code, out, errOut)
	}

	// Denied on the device page, after lex was told to wait
	// (authorization_pending) at least once.
	dana := personConfig(t, env, op.Issuer, ca, "dana", "")
	if code, _, errOut := deviceLogin(t, op, dana, "dana", false, true); code != cli.ExitError ||
		!strings.Contains(errOut, "the sign-in was denied at the identity provider") || !strings.Contains(errOut, "run lex login --device again") {
		t.Errorf("denied: exit %d\n%s", code, errOut)
	}
	assertNothingStored(t, dana)

	// No second factor: lex refuses the token...
	bob := personConfig(t, env, op.Issuer, ca, "bob", "")
	if code, _, errOut := deviceLogin(t, op, bob, "bob", true, false); code != cli.ExitError ||
		!strings.Contains(errOut, "multi-factor authentication is required: the identity provider reports that you signed in with pwd") {
		t.Errorf("without MFA: exit %d\n%s", code, errOut)
	}
	assertNothingStored(t, bob)
	// ...and so does the people CA when a config lets it through.
	lax := personConfig(t, env, op.Issuer, ca, "bob-lax", "  mfa_amr: [pwd]\n")
	if code, _, errOut := deviceLogin(t, op, lax, "bob", true, false); code != cli.ExitError ||
		!strings.Contains(errOut, "the people CA refused to issue your certificate") || !strings.Contains(errOut, "multi-factor authentication is required: sign in with your second factor") {
		t.Errorf("without MFA, lex's check loosened: exit %d\n%s", code, errOut)
	}
	assertNothingStored(t, lax)

	// A code nobody approves in time: a provider whose codes live a second.
	short := ssotest.StartOP(t, users, time.Second)
	late := personConfig(t, env, short.Issuer, ca, "alice-late", "")
	if code, _, errOut := deviceLogin(t, short, late, "", false, false); code != cli.ExitError ||
		!strings.Contains(errOut, "the sign-in code expired before it was approved") {
		t.Errorf("expired code: exit %d\n%s", code, errOut)
	}
	assertNothingStored(t, late)
}
