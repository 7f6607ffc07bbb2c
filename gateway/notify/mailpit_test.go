package notify_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/notify"
)

// mailpit is a running Mailpit (github.com/axllent/mailpit, pinned as a Go
// tool in ./tools), an SMTP server with an HTTP API to read what it got.
type mailpit struct {
	smtp, api string
	caFile    string
}

// freePort picks a free loopback port for a program that takes an address
// rather than a listener.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailpit test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	cert, key = filepath.Join(dir, "smtp.crt"), filepath.Join(dir, "smtp.key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

// requireTLS is Mailpit's flag that makes a TLS mode of notify.EmailConfig
// the only way in.
var requireTLS = map[string]string{"starttls": "--smtp-require-starttls", "implicit": "--smtp-require-tls"}

// startMailpit builds Mailpit from the pinned tools module and runs it with
// STARTTLS required and one SMTP account. A build failure fails the test
// (never a skip): the Go module proxy provides it everywhere the tests run.
func startMailpit(t *testing.T, tlsMode string) *mailpit {
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailpit")
	build := exec.Command("go", "build", "-o", bin, "github.com/axllent/mailpit")
	build.Dir = "tools"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build Mailpit from gateway/notify/tools (go build github.com/axllent/mailpit): %v\n%s", err, out)
	}
	cert, key := selfSigned(t, dir)
	auth := filepath.Join(dir, "smtp-auth")
	os.WriteFile(auth, []byte("lexgate:s3cret-relay\n"), 0o600)
	m := &mailpit{smtp: freePort(t), api: freePort(t), caFile: cert}
	cmd := exec.Command(bin, "--smtp", m.smtp, "--listen", m.api, "--database", filepath.Join(dir, "mailpit.db"),
		"--smtp-tls-cert", cert, "--smtp-tls-key", key, requireTLS[tlsMode], "--smtp-auth-file", auth,
		"--smtp-disable-rdns", "--quiet")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mailpit:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) { // an outside process: poll its API
		if resp, err := http.Get("http://" + m.api + "/api/v1/messages"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not answer in a minute:\n%s", out.String())
		}
	}
}

// mail is one message as Mailpit's API shows it.
type mail struct {
	ID      string
	Subject string
	To      []struct{ Address string }
	Text    string
	Raw     string
}

// messages returns every message Mailpit holds, with text and raw source.
func (m *mailpit) messages(t *testing.T) []mail {
	var list struct{ Messages []mail }
	getJSON(t, "http://"+m.api+"/api/v1/messages?limit=500", &list)
	for i := range list.Messages {
		var full struct{ Text string }
		getJSON(t, "http://"+m.api+"/api/v1/message/"+list.Messages[i].ID, &full)
		list.Messages[i].Text = full.Text
		resp, err := http.Get("http://" + m.api + "/api/v1/message/" + list.Messages[i].ID + "/raw")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		list.Messages[i].Raw = b.String()
	}
	return list.Messages
}

func getJSON(t *testing.T, url string, v any) {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

func lex(t *testing.T, config string, args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := cli.Main(t.Context(), append([]string{"--config", config}, args...), nil, &out, &errOut)
	return code, out.String() + errOut.String()
}

// TestEmailThroughMailpit: a real send, a refused send and an expiry
// warning reach Mailpit over STARTTLS, and over implicit TLS, with
// authentication (Mailpit refuses anything else): the waiting mail
// goes to the recipient, the refusal to the sender and the security group,
// the expiry warning to both parties; no mail names a file of the bundle,
// and none carries the matter (the organisation does not allow it).
func TestEmailThroughMailpit(t *testing.T) {
	for _, mode := range []string{"starttls", "implicit"} {
		t.Run(mode, func(t *testing.T) { testEmail(t, mode) })
	}
}

func testEmail(t *testing.T, mode string) {
	mp := startMailpit(t, mode)
	dir := t.TempDir()
	pw := filepath.Join(dir, "smtp-password")
	os.WriteFile(pw, []byte("s3cret-relay\n"), 0o600)
	directory := filepath.Join(dir, "directory.yaml")
	os.WriteFile(directory, []byte(fmt.Sprintf(`people:
  %s: alice@harbor-law.example
  %s: review@manila-lpo.example
groups:
  security: [soc@harbor-law.example]
`, gatewaytest.Alice, gatewaytest.Team)), 0o600)
	env := gatewaytest.Start(t, gatewaytest.WithConfig(func(c *gateway.Config) {
		c.Notify.Email = notify.EmailConfig{SMTP: mp.smtp, TLS: mode, CAFile: mp.caFile, Username: "lexgate", PasswordFile: pw,
			From: "lexgate@harbor-law.example"}
		c.Notify.Directory = directory
		c.Notify.ExpiryWarning = 100 * 24 * time.Hour // the dev organisations keep transfers 60 or 90 days
		fastRetries(&c.Notify)
	}))
	alice, team := env.ClientConfig(gatewaytest.Alice), env.ClientConfig(gatewaytest.Team)
	for _, c := range []string{alice, team} {
		for _, cmd := range []string{"keygen", "register"} {
			if code, out := lex(t, c, cmd); code != 0 {
				t.Fatalf("lex %s: %s", cmd, out)
			}
		}
	}
	const secretName = "Project-Falcon-merger-term-sheet"
	bundle := filepath.Join(dir, "bundle")
	os.MkdirAll(bundle, 0o700)
	os.WriteFile(filepath.Join(bundle, secretName+".txt"), []byte("strictly confidential"), 0o600)
	if code, out := lex(t, alice, "send", "--to", gatewaytest.Team, "--matter", "HL-2026-0042", bundle); code != 0 {
		t.Fatalf("send: %s", out)
	}
	if code, out := lex(t, alice, "send", "--to", gatewaytest.Team, "--matter", "HL-2026-0042", "--label", "health", bundle); code == 0 {
		t.Fatalf("a send of health data to Manila was not refused: %s", out)
	}

	want := map[string][]string{ // subject prefix → recipients
		"A transfer is waiting for you": {"review@manila-lpo.example"},
		"A send was refused by policy":  {"alice@harbor-law.example", "soc@harbor-law.example"},
		"A transfer expires on":         {"review@manila-lpo.example", "alice@harbor-law.example"},
	}
	var msgs []mail
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) { // Mailpit has no push to wait on
		msgs = mp.messages(t)
		if len(msgs) >= 5 || time.Now().After(deadline) {
			break
		}
	}
	got := map[string][]string{}
	for _, m := range msgs {
		for prefix := range want {
			if strings.HasPrefix(m.Subject, prefix) {
				for _, to := range m.To {
					got[prefix] = append(got[prefix], to.Address)
				}
			}
		}
		for _, leak := range []string{secretName, "HL-2026-0042", ".txt"} {
			if strings.Contains(m.Raw, leak) {
				t.Errorf("mail %q carries %q:\n%s", m.Subject, leak, m.Raw)
			}
		}
		if strings.HasPrefix(m.Subject, "A transfer is waiting") && !strings.Contains(m.Text, "lex receive ") {
			t.Errorf("waiting mail without the receive command:\n%s", m.Text)
		}
		if strings.HasPrefix(m.Subject, "A send was refused") && !strings.Contains(m.Text, "Decision ID: ") {
			t.Errorf("refusal mail without its decision id:\n%s", m.Text)
		}
	}
	if len(msgs) != 5 {
		t.Errorf("%d mails, want 5", len(msgs))
	}
	for prefix, rcpts := range want {
		if strings.Join(sorted(got[prefix]), ",") != strings.Join(sorted(rcpts), ",") {
			t.Errorf("%q went to %v, want %v", prefix, got[prefix], rcpts)
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
