package cli

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
)

// ErrLoginNeeded is wrapped when lex has no valid person certificate.
var ErrLoginNeeded = errors.New("run lex login")

// LoginConfig is the "login" section of the lex config: single sign-on for
// people. lex login signs in with the firm's OpenID Connect provider
// (authorization code with PKCE on a loopback redirect), and asks the
// firm's people CA (step-ca with an OIDC provisioner) for a short-lived
// X.509-SVID for the key it generates; the key never leaves the machine.
//
//	login:
//	  issuer: https://sso.harbor-law.example/
//	  client_id: lex
//	  ca_url: https://people-ca.harbor-law.example:9000
//	  ca_root: people-root.pem
type LoginConfig struct {
	// Issuer is the OpenID Connect issuer URL (its discovery document is
	// at Issuer/.well-known/openid-configuration).
	Issuer string `yaml:"issuer"`
	// ClientID is lex's public client at the provider (no secret: PKCE).
	ClientID string `yaml:"client_id"`
	// Scopes asked for; default openid profile email.
	Scopes []string `yaml:"scopes"`
	// CAURL is the people CA (step-ca).
	CAURL string `yaml:"ca_url"`
	// CARoot is the PEM file of the people CA's root, which its TLS
	// certificate chains to.
	CARoot string `yaml:"ca_root"`
	// Dir holds person.crt and person.key (0600); default <config dir>/login.
	Dir string `yaml:"dir"`
}

// enabled reports whether the config has a login section.
func (l *LoginConfig) enabled() bool { return l != nil && l.Issuer != "" }

func (l *LoginConfig) paths() (cert, key string) {
	return filepath.Join(l.Dir, "person.crt"), filepath.Join(l.Dir, "person.key")
}

// check validates the section.
func (l *LoginConfig) check(path string) error {
	var missing []string
	for _, f := range []struct{ k, v string }{{"issuer", l.Issuer}, {"client_id", l.ClientID}, {"ca_url", l.CAURL}, {"ca_root", l.CARoot}} {
		if f.v == "" {
			missing = append(missing, "login."+f.k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("config %s: missing %s", path, strings.Join(missing, ", "))
	}
	return nil
}

// loadPersonSVID loads the person certificate lex login stored, refusing a
// missing or expired one with ErrLoginNeeded.
func (l *LoginConfig) loadPersonSVID(now time.Time) (*x509svid.SVID, error) {
	cert, key := l.paths()
	svid, err := certs.LoadSVID(cert, key)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("you are not signed in (no %s): %w", cert, ErrLoginNeeded)
	}
	if err != nil {
		return nil, fmt.Errorf("your certificate %s: %v: %w", cert, err, ErrLoginNeeded)
	}
	if leaf := svid.Certificates[0]; now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("your sign-in as %s expired at %s: %w", svid.ID, leaf.NotAfter.Local().Format(time.DateTime), ErrLoginNeeded)
	}
	return svid, nil
}

var loginCommand = &command{
	name:    "login",
	args:    "",
	summary: "sign in with the firm's single sign-on; get a short-lived certificate",
	help: `Opens the firm's sign-in page (print its address, open it in a browser),
waits for the provider to redirect back to 127.0.0.1, then asks the people CA
for a certificate for a key made here, valid for a working day. Needs the
config's login section. The certificate and key are stored 0600 in login.dir.`,
	run: runLogin,
}

var logoutCommand = &command{
	name:    "logout",
	summary: "delete the certificate lex login stored",
	run:     runLogout,
}

func runLogout(e *env, args []string) error {
	if len(args) > 0 {
		return &usageError{msg: "logout takes no arguments"}
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	if !cfg.Login.enabled() {
		return fmt.Errorf("config %s has no login section", cfg.Path)
	}
	cert, key := cfg.Login.paths()
	for _, p := range []string{key, cert} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	fmt.Fprintln(e.stdout, "signed out")
	return nil
}

func runLogin(e *env, args []string) error {
	if len(args) > 0 {
		return &usageError{msg: "login takes no arguments"}
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	if !cfg.Login.enabled() {
		return fmt.Errorf("config %s has no login section (issuer, client_id, ca_url, ca_root)", cfg.Path)
	}
	if err := cfg.Login.check(cfg.Path); err != nil {
		return err
	}
	svid, err := login(e.ctx, cfg.Login, e.stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "signed in as %s until %s\n", svid.ID, svid.Certificates[0].NotAfter.Local().Format(time.DateTime))
	return nil
}

// login runs the whole sign-in and stores the person SVID.
func login(ctx context.Context, l *LoginConfig, say io.Writer) (*x509svid.SVID, error) {
	disc, err := discover(ctx, l.Issuer)
	if err != nil {
		return nil, err
	}
	idToken, err := authCodePKCE(ctx, l, disc, say)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	chain, err := signCSR(ctx, l, key, idToken)
	if err != nil {
		return nil, err
	}
	svid, err := x509svid.ParseRaw(chainDER(chain), mustPKCS8(key))
	if err != nil {
		return nil, fmt.Errorf("the people CA issued a certificate that is not an X.509-SVID: %w", err)
	}
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, err
	}
	cert, keyPath := l.paths()
	if err := certs.WriteSVID(cert, keyPath, svid); err != nil {
		return nil, err
	}
	if err := os.Chmod(cert, 0o600); err != nil { // the person's, like the key
		return nil, err
	}
	return svid, nil
}

func chainDER(chain []*x509.Certificate) []byte {
	var out []byte
	for _, c := range chain {
		out = append(out, c.Raw...)
	}
	return out
}

func mustPKCS8(key crypto.Signer) []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(key) // an ECDSA P-256 key always marshals
	return der
}

// discovery is the part of an OpenID provider's metadata lex uses.
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
}

func discover(ctx context.Context, issuer string) (*discovery, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	var d discovery
	if err := getJSON(ctx, http.DefaultClient, u, &d); err != nil {
		return nil, fmt.Errorf("identity provider %s: %w", issuer, err)
	}
	if d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" {
		return nil, fmt.Errorf("identity provider %s: its discovery document lacks the authorization or token endpoint", issuer)
	}
	return &d, nil
}

func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loginTimeout bounds the wait for the browser to come back.
const loginTimeout = 5 * time.Minute

// authCodePKCE runs the authorization code flow with PKCE (S256) on a
// loopback redirect and returns the ID token.
func authCodePKCE(ctx context.Context, l *LoginConfig, d *discovery, say io.Writer) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("loopback listener for the sign-in redirect: %w", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	state, nonce, verifier := randomString(16), randomString(16), randomString(32)
	challenge := sha256.Sum256([]byte(verifier))
	scopes := l.Scopes
	if len(scopes) == 0 {
		scopes = []string{"openid", "profile", "email"}
	}
	q := url.Values{
		"response_type": {"code"}, "client_id": {l.ClientID}, "redirect_uri": {redirect},
		"scope": {strings.Join(scopes, " ")}, "state": {state}, "nonce": {nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"},
	}
	authURL := d.AuthorizationEndpoint + "?" + q.Encode()
	fmt.Fprintf(say, "Open this address in your browser to sign in:\n\n  %s\n\nWaiting for the sign-in to finish...\n", authURL)

	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		p := r.URL.Query()
		var res result
		switch {
		case p.Get("state") != state:
			res.err = errors.New("the sign-in redirect came back with another state: refusing it (start lex login again)")
		case p.Get("error") != "":
			res.err = fmt.Errorf("the identity provider refused the sign-in: %s: %s", p.Get("error"), p.Get("error_description"))
		case p.Get("code") == "":
			res.err = errors.New("the sign-in redirect carries no authorization code")
		default:
			res.code = p.Get("code")
		}
		if res.err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "<p>Sign-in failed: %s</p>", html.EscapeString(res.err.Error()))
		} else {
			io.WriteString(w, "<p>Signed in. You can close this window and return to lex.</p>")
		}
		select {
		case got <- res:
		default:
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		return "", fmt.Errorf("no sign-in within %v: %w", loginTimeout, ctx.Err())
	}
	if res.err != nil {
		return "", res.err
	}
	tok, err := exchangeCode(ctx, l, d, res.code, redirect, verifier)
	if err != nil {
		return "", err
	}
	if got := tokenNonce(tok); got != nonce {
		return "", errors.New("the identity provider's ID token does not carry this sign-in's nonce: refusing it (start lex login again)")
	}
	return tok, nil
}

// tokenNonce returns the nonce claim of a JWT without verifying it: the
// people CA verifies the token; lex only checks that it answers this
// sign-in. "" if there is none or the token is malformed.
func tokenNonce(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Nonce string `json:"nonce"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Nonce
}

// exchangeCode trades the authorization code for the ID token.
func exchangeCode(ctx context.Context, l *LoginConfig, d *discovery, code, redirect, verifier string) (string, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {l.ClientID}, "code_verifier": {verifier}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("identity provider token endpoint: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
		Desc    string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return "", fmt.Errorf("identity provider token endpoint: %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || tok.IDToken == "" {
		return "", fmt.Errorf("identity provider token endpoint: %s: %s %s", resp.Status, tok.Error, tok.Desc)
	}
	return tok.IDToken, nil
}

// signCSR asks the people CA (step-ca's /1.0/sign) to certify key, with the
// ID token as the one-time token, and returns the chain, leaf first.
func signCSR(ctx context.Context, l *LoginConfig, key *ecdsa.PrivateKey, idToken string) ([]*x509.Certificate, error) {
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "lex"}}, key)
	if err != nil {
		return nil, err
	}
	rootPEM, err := os.ReadFile(l.CARoot)
	if err != nil {
		return nil, fmt.Errorf("login.ca_root: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		return nil, fmt.Errorf("login.ca_root %s holds no certificate", l.CARoot)
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	body, _ := json.Marshal(map[string]string{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})), "ott": idToken})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(l.CAURL, "/")+"/1.0/sign", strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("people CA %s: %w", l.CAURL, err)
	}
	defer resp.Body.Close()
	var out struct {
		CertChain []string `json:"certChain"`
		Message   string   `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("people CA %s: %s: %w", l.CAURL, resp.Status, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("the people CA refused to issue your certificate: %s", out.Message)
	}
	var chain []*x509.Certificate
	for _, p := range out.CertChain {
		blk, _ := pem.Decode([]byte(p))
		if blk == nil {
			return nil, fmt.Errorf("people CA %s: a certificate of its chain is not PEM", l.CAURL)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("people CA %s: %w", l.CAURL, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("people CA %s: no certificate in its answer", l.CAURL)
	}
	return chain, nil
}
