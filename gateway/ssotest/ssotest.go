// Package ssotest runs a firm's single sign-on for tests: a real OpenID
// Connect provider (Ory Hydra v2.3.0, in-memory database) whose login and
// consent app is played by the test through Hydra's admin API; for the
// device code flow, which Hydra v2.3.0 lacks, zitadel/oidc's provider
// (StartOP), whose device-approval pages the test drives over HTTP; and a real
// people CA (smallstep step-ca v0.30.2) with an OIDC provisioner whose X.509
// template turns the ID token into a person X.509-SVID
// (spiffe://<trust domain>/person/<subject>) and refuses a token without
// multi-factor authentication ("otp" in its amr claim). All three are pinned in
// nested modules under cmd/internal/tools and built like SPIRE (package
// spiretest) when missing.
package ssotest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/spiretest"
)

// Versions of the pinned programs.
const (
	HydraVersion  = "v2.3.0"
	StepCAVersion = "v0.30.2"
)

// ClientID is lex's public OAuth 2.0 client at the provider.
const ClientID = "lex"

// Hydra is a running Ory Hydra.
type Hydra struct {
	Issuer string // public URL, the OpenID Connect issuer
	admin  string
	// Users the login app knows; a login of anyone else is rejected, as a
	// user removed from the firm's directory.
	Users map[string]User
}

// User is a person the login app signs in.
type User struct {
	Subject string
	AMR     []string // authentication methods: "pwd", "otp"...
	Groups  []string
}

// StartHydra starts Hydra on loopback with an in-memory database and
// registers lex as a public client with loopback redirects.
func StartHydra(t testing.TB) *Hydra {
	t.Helper()
	bin := spiretest.Build(t, spiretest.Tool{Name: "hydra", Version: HydraVersion, Module: "hydra",
		Packages: []string{"github.com/ory/hydra/v2"}, Tags: "sqlite,sqlite_omit_load_extension"})[0]
	dir := t.TempDir()
	pub, adm := spiretest.FreePort(t), spiretest.FreePort(t)
	h := &Hydra{Issuer: fmt.Sprintf("http://127.0.0.1:%d", pub), admin: fmt.Sprintf("http://127.0.0.1:%d", adm), Users: map[string]User{}}
	conf := fmt.Sprintf(`serve:
  public:
    host: 127.0.0.1
    port: %d
  admin:
    host: 127.0.0.1
    port: %d
urls:
  self:
    issuer: %s
  login: http://127.0.0.1:1/login
  consent: http://127.0.0.1:1/consent
secrets:
  system:
    - this-is-a-test-secret-of-32-chars-or-more
oidc:
  subject_identifiers:
    supported_types: [public]
log:
  level: warn
`, pub, adm, h.Issuer)
	path := filepath.Join(dir, "hydra.yml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	spiretest.Run(t, "hydra", filepath.Join(dir, "hydra.log"), []string{"DSN=memory"}, bin, "serve", "all", "--dev", "-c", path)
	waitOK(t, "hydra", h.admin+"/health/ready", nil)
	body := map[string]any{"client_id": ClientID, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		"redirect_uris": []string{"http://127.0.0.1/callback"}, "scope": "openid profile email"}
	if _, err := h.adminJSON(http.MethodPost, "/admin/clients", "", body); err != nil {
		t.Fatalf("hydra: register lex: %v", err)
	}
	return h
}

// adminJSON calls Hydra's admin API and returns the reply's redirect_to.
func (h *Hydra) adminJSON(method, path, query string, body any) (string, error) {
	b, _ := json.Marshal(body)
	u := h.admin + path
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequest(method, u, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, rb)
	}
	var r struct {
		RedirectTo string `json:"redirect_to"`
	}
	json.Unmarshal(rb, &r)
	return r.RedirectTo, nil
}

// Browse plays the person's browser and the firm's login and consent app
// for authURL (what lex login printed): the login of user is accepted with
// its authentication methods if the directory (Users) knows it, rejected
// otherwise; consent is granted; the browser follows the redirect back to
// lex's loopback listener. It returns lex's answer page.
func (h *Hydra) Browse(authURL, user string) (string, error) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	next := authURL
	for range 10 {
		resp, err := hc.Get(next)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			return string(body), nil // lex's page (or an error page)
		}
		u, err := resp.Location()
		if err != nil {
			return "", err
		}
		switch {
		case u.Path == "/login" && u.Query().Get("login_challenge") != "":
			next, err = h.login(u.Query().Get("login_challenge"), user)
		case u.Path == "/consent" && u.Query().Get("consent_challenge") != "":
			next, err = h.consent(u.Query().Get("consent_challenge"), user)
		default:
			next = u.String()
		}
		if err != nil {
			return "", err
		}
	}
	return "", errors.New("too many redirects")
}

func (h *Hydra) login(challenge, user string) (string, error) {
	q := "login_challenge=" + url.QueryEscape(challenge)
	u, ok := h.Users[user]
	if !ok {
		return h.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/login/reject", q,
			map[string]string{"error": "access_denied", "error_description": "no such user in the firm's directory"})
	}
	return h.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/login/accept", q,
		map[string]any{"subject": u.Subject, "amr": u.AMR, "remember": false})
}

func (h *Hydra) consent(challenge, user string) (string, error) {
	u := h.Users[user]
	return h.adminJSON(http.MethodPut, "/admin/oauth2/auth/requests/consent/accept", "consent_challenge="+url.QueryEscape(challenge),
		map[string]any{"grant_scope": []string{"openid", "profile", "email"},
			"session": map[string]any{"id_token": map[string]any{"groups": u.Groups}}})
}

// StepCA is a running step-ca with an OIDC provisioner for the provider.
type StepCA struct {
	URL  string
	Root string // root certificate PEM file: people's certificates chain to it
}

// StartStepCA initialises a CA with "step ca init", adds the OIDC
// provisioner of examples/step-ca (provisioner.json with its person.tpl,
// pointed at the provider issuer, certificates of ttl) and starts it. The
// template names harbor-law.example. Start the provider first: step-ca
// reads its discovery document when it starts.
func StartStepCA(t testing.TB, issuer string, ttl time.Duration) *StepCA {
	const trustDomain = "harbor-law.example"
	t.Helper()
	bins := spiretest.Build(t, spiretest.Tool{Name: "stepca", Version: StepCAVersion, Module: "stepca", Env: []string{"CGO_ENABLED=0"},
		Packages: []string{"github.com/smallstep/certificates/cmd/step-ca", "github.com/smallstep/cli/cmd/step"}})
	stepCA, step := bins[0], bins[1]
	dir := t.TempDir()
	port := spiretest.FreePort(t)
	pw := filepath.Join(dir, "password")
	os.WriteFile(pw, []byte("test-password\n"), 0o600)
	env := append(os.Environ(), "STEPPATH="+dir)
	init := exec.Command(step, "ca", "init", "--name", trustDomain+" people", "--dns", "127.0.0.1",
		"--address", fmt.Sprintf("127.0.0.1:%d", port), "--provisioner", "admin", "--password-file", pw,
		"--provisioner-password-file", pw, "--deployment-type", "standalone")
	init.Env = env
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("step ca init: %v\n%s", err, out)
	}
	examples, err := examplesDir()
	if err != nil {
		t.Fatal(err)
	}
	var prov map[string]any
	if b, err := os.ReadFile(filepath.Join(examples, "provisioner.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &prov); err != nil {
		t.Fatalf("examples/step-ca/provisioner.json: %v", err)
	}
	prov["clientID"] = ClientID
	prov["configurationEndpoint"] = strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	prov["claims"].(map[string]any)["defaultTLSCertDuration"] = ttl.String()
	prov["claims"].(map[string]any)["maxTLSCertDuration"] = ttl.String()
	prov["claims"].(map[string]any)["minTLSCertDuration"] = "1s"
	prov["options"].(map[string]any)["x509"].(map[string]any)["templateFile"] = filepath.Join(examples, "person.tpl")
	caJSON := filepath.Join(dir, "config", "ca.json")
	var ca map[string]any
	b, err := os.ReadFile(caJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ca); err != nil {
		t.Fatal(err)
	}
	auth := ca["authority"].(map[string]any)
	auth["provisioners"] = append(auth["provisioners"].([]any), prov)
	b, _ = json.MarshalIndent(ca, "", "  ")
	os.WriteFile(caJSON, b, 0o600)
	s := &StepCA{URL: fmt.Sprintf("https://127.0.0.1:%d", port), Root: filepath.Join(dir, "certs", "root_ca.crt")}
	spiretest.Run(t, "step-ca", filepath.Join(dir, "step-ca.log"), env, stepCA, caJSON, "--password-file", pw)
	rootPEM, _ := os.ReadFile(s.Root)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	waitOK(t, "step-ca", s.URL+"/health", &tls.Config{RootCAs: roots})
	return s
}

// examplesDir finds examples/step-ca beside the lexgate module's go.mod.
func examplesDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("ssotest: go env GOMOD: %w", err)
	}
	return filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "examples", "step-ca"), nil
}

// waitOK polls u until it answers 200, for at most three minutes.
func waitOK(t testing.TB, name, u string, tc *tls.Config) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := hc.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up at %s: %v", name, u, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
