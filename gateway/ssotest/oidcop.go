package ssotest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/spiretest"
)

// OIDCOPVersion is the version of zitadel/oidc that cmd/internal/tools/oidcop
// pins, with a suffix counting changes to its main.go: bump the suffix
// (here and in the Makefile's OIDCOP_VERSION) when main.go changes, so that
// a binary cached in the tools directory is not reused.
const OIDCOPVersion = "v3.53.0-1"

// OP is a running OpenID provider that speaks the OAuth 2.0 Device
// Authorization Grant (RFC 8628): zitadel/oidc's op package with its
// example storage, login and device-approval pages (cmd/internal/tools/oidcop).
// Ory Hydra v2.3.0, the provider of the code-flow test, has no device
// authorization endpoint.
type OP struct {
	Issuer string
	users  map[string]OPUser
}

// OPUser is a person of the provider's directory.
type OPUser struct {
	Password string
	// AMR is what the provider reports (as the ID token's amr) of how the
	// person authenticated: the example's device page asks only for the
	// password, "otp" stands for the firm's second factor.
	AMR []string
}

// StartOP starts the provider on loopback with users (by name; the name is
// also the subject) and lex registered as a public client allowed the
// device grant. deviceCodeLifetime, if not zero, shortens how long a device
// code may be approved (the provider still advertises its default, 5
// minutes, as expires_in: the token endpoint answers expired_token early).
func StartOP(t testing.TB, users map[string]OPUser, deviceCodeLifetime time.Duration) *OP {
	t.Helper()
	bin := spiretest.Build(t, spiretest.Tool{Name: "oidcop", Version: OIDCOPVersion, Module: "oidcop",
		Packages: []string{"github.com/lexgate/lexgate/cmd/internal/tools/oidcop"}})[0]
	dir := t.TempDir()
	type user struct {
		ID, Username, Password string
		AMR                    []string
	}
	file := map[string]user{}
	for name, u := range users {
		file[name] = user{ID: name, Username: name, Password: u.Password, AMR: u.AMR}
	}
	b, _ := json.Marshal(file)
	usersPath := filepath.Join(dir, "users.json")
	if err := os.WriteFile(usersPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	port := spiretest.FreePort(t)
	op := &OP{Issuer: fmt.Sprintf("http://127.0.0.1:%d", port), users: users}
	spiretest.Run(t, "oidcop", filepath.Join(dir, "oidcop.log"), nil, bin, "-port", fmt.Sprint(port), "-users", usersPath,
		"-client", ClientID, "-device-code-lifetime", deviceCodeLifetime.String())
	waitOK(t, "oidcop", op.Issuer+"/.well-known/openid-configuration", nil)
	return op
}

// ApproveDevice plays the person on another device: it opens the
// verification address lex printed, enters userCode, signs in as user with
// the password the directory holds, and allows (or denies) lex's request
// on the provider's confirmation page.
func (o *OP) ApproveDevice(verificationURI, userCode, user string, allow bool) error {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: time.Minute}
	page, err := get(hc, verificationURI+"?user_code="+url.QueryEscape(userCode))
	if err != nil {
		return err
	}
	if !strings.Contains(page, `name="user_code"`) {
		return fmt.Errorf("the device page has no user code form: %.300s", page)
	}
	resp, err := hc.PostForm(o.Issuer+"/device/login", url.Values{"user_code": {userCode}, "username": {user}, "password": {o.users[user].Password}})
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "confirm?action=allowed") {
		return fmt.Errorf("sign-in at the device page failed: %.300s", b)
	}
	action := "denied"
	if allow {
		action = "allowed"
	}
	page, err = get(hc, o.Issuer+"/device/confirm?action="+action)
	if err != nil {
		return err
	}
	if !strings.Contains(page, "Device authorization "+action) {
		return fmt.Errorf("the confirmation page said %.300s", page)
	}
	return nil
}

func get(hc *http.Client, u string) (string, error) {
	resp, err := hc.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %.300s", u, resp.Status, b)
	}
	return string(b), err
}
