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
// lex login --device signs in with the Device Authorization Grant (RFC
// 8628) instead, for machines without a browser.
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
	// MFAAMR lists the authentication methods (RFC 8176 amr values) of
	// which the ID token must report at least one for lex to accept the
	// sign-in as multi-factor; default otp and mfa. MFAACR lists
	// assurance levels (acr values) that are accepted as well. The people
	// CA's template enforces the same on its side.
	MFAAMR []string `yaml:"mfa_amr"`
	MFAACR []string `yaml:"mfa_acr"`
}

// defaultMFAAMR is what login.mfa_amr defaults to: a one-time password or
// the provider's own "multi-factor" (RFC 8176).
var defaultMFAAMR = []string{"otp", "mfa"}

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
	summary: "sign in with the firm's single sign-on; get a short-lived certificate",
	args:    "[--device | --browser]",
	help: `Opens the firm's sign-in page (print its address, open it in a browser),
waits for the provider to redirect back to 127.0.0.1, then asks the people CA
for a certificate for a key made here, valid for a working day. Needs the
config's login section. The certificate and key are stored 0600 in login.dir.

The sign-in must be multi-factor: the identity provider's ID token must report
one of login.mfa_amr (default otp, mfa) in its amr claim, or an acr listed in
login.mfa_acr.

  --device   for a machine without a browser (an SSH session, a server): lex
             prints an address and a code; open the address on any device
             (your phone), enter the code, sign in and approve. lex waits
             until you do, polling the provider as often as it allows, and
             stops when you deny it or the code expires (OAuth 2.0 Device
             Authorization Grant, RFC 8628).
  --browser  the redirect to 127.0.0.1, even in an SSH session.

Without either, lex picks: in an SSH session without a display (SSH_CONNECTION
or SSH_TTY set, DISPLAY and WAYLAND_DISPLAY not) the provider's redirect could
not reach this machine, so lex signs in with a code as with --device, and
says so; if the provider offers no device sign-in it falls back to the
redirect.`,
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
	fs := newFlagSet("login")
	device := fs.Bool("device", false, "sign in on another device with a code (no browser here)")
	browser := fs.Bool("browser", false, "sign in through the redirect to 127.0.0.1, even in an SSH session")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &usageError{msg: "login takes no arguments"}
	}
	if *device && *browser {
		return &usageError{msg: "login takes --device or --browser, not both"}
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
	var verbose io.Writer
	if e.verbose {
		verbose = e.stderr
	}
	flow := authCodeFlow
	switch {
	case *device:
		flow = deviceFlow(verbose)
	case *browser:
	default:
		if why := noBrowserHere(os.Getenv); why != "" {
			flow = autoDeviceFlow(why, verbose)
		}
	}
	svid, err := login(e.ctx, cfg.Login, flow, e.stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "signed in as %s until %s\n", svid.ID, svid.Certificates[0].NotAfter.Local().Format(time.DateTime))
	return nil
}

// signInFlow is how lex gets the ID token: it returns the token and the
// nonce it must carry ("" where the flow has none).
type signInFlow func(ctx context.Context, l *LoginConfig, d *discovery, say io.Writer) (idToken, nonce string, err error)

var authCodeFlow signInFlow = authCodePKCE

// deviceFlow is the device authorization grant; with verbose (-v) not nil
// it says there what each poll got.
func deviceFlow(verbose io.Writer) signInFlow {
	return func(ctx context.Context, l *LoginConfig, d *discovery, say io.Writer) (string, string, error) {
		tok, err := deviceGrant(ctx, idpClient, l, d, say, verbose, sleepCtx)
		return tok, "", err
	}
}

// noBrowserHere says why a browser on this machine cannot take the
// provider's redirect to 127.0.0.1 ("" when it may): in an SSH session
// without a display the person's browser runs on another machine, whose
// 127.0.0.1 is not this one.
func noBrowserHere(getenv func(string) string) string {
	ssh := getenv("SSH_CONNECTION") != "" || getenv("SSH_TTY") != ""
	display := getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != ""
	if ssh && !display {
		return "this is an SSH session without a display"
	}
	return ""
}

// autoDeviceFlow is the device grant lex picks by itself (why says for
// what reason); with a provider that offers none it falls back to the
// redirect flow rather than fail.
func autoDeviceFlow(why string, verbose io.Writer) signInFlow {
	device := deviceFlow(verbose)
	return func(ctx context.Context, l *LoginConfig, d *discovery, say io.Writer) (string, string, error) {
		if d.DeviceAuthorizationEndpoint == "" {
			fmt.Fprintf(say, "%s, but %s offers no device sign-in: using the redirect to this machine\n", why, l.Issuer)
			return authCodeFlow(ctx, l, d, say)
		}
		fmt.Fprintf(say, "%s: signing in with a code (lex login --browser for the redirect)\n", why)
		return device(ctx, l, d, say)
	}
}

// login runs the whole sign-in with flow and stores the person SVID: the
// ID token, whichever flow got it, is verified (signature, issuer,
// audience, expiry, nonce) and must report multi-factor authentication
// before a key is made and certified.
func login(ctx context.Context, l *LoginConfig, flow signInFlow, say io.Writer) (*x509svid.SVID, error) {
	disc, err := discover(ctx, l.Issuer)
	if err != nil {
		return nil, err
	}
	idToken, nonce, err := flow(ctx, l, disc, say)
	if err != nil {
		return nil, err
	}
	claims, err := verifyIDToken(ctx, idpClient, l, disc, idToken, nonce, time.Now())
	if err != nil {
		return nil, err
	}
	if err := l.requireMFA(claims); err != nil {
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

// idpClient makes lex's requests to the identity provider: each is
// bounded, so that a provider that stops answering fails the sign-in.
var idpClient = &http.Client{Timeout: 30 * time.Second}

// discovery is the part of an OpenID provider's metadata lex uses.
type discovery struct {
	Issuer                      string `json:"issuer"`
	AuthorizationEndpoint       string `json:"authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	JWKSURI                     string `json:"jwks_uri"`
}

func discover(ctx context.Context, issuer string) (*discovery, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	var d discovery
	if err := getJSON(ctx, idpClient, u, &d); err != nil {
		return nil, fmt.Errorf("identity provider %s: %w", issuer, err)
	}
	if d.TokenEndpoint == "" || d.JWKSURI == "" {
		return nil, fmt.Errorf("identity provider %s: its discovery document lacks the token endpoint or jwks_uri", issuer)
	}
	if strings.TrimSuffix(d.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return nil, fmt.Errorf("identity provider %s: its discovery document names another issuer, %q: check login.issuer", issuer, d.Issuer)
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
// loopback redirect and returns the ID token and the nonce it must carry.
func authCodePKCE(ctx context.Context, l *LoginConfig, d *discovery, say io.Writer) (string, string, error) {
	if d.AuthorizationEndpoint == "" {
		return "", "", fmt.Errorf("identity provider %s: its discovery document has no authorization endpoint", l.Issuer)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", fmt.Errorf("loopback listener for the sign-in redirect: %w (without a browser here, use lex login --device)", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	state, nonce, verifier := randomString(16), randomString(16), randomString(32)
	challenge := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {l.ClientID}, "redirect_uri": {redirect},
		"scope": {l.scope()}, "state": {state}, "nonce": {nonce},
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
		return "", "", fmt.Errorf("no sign-in within %v: %w", loginTimeout, ctx.Err())
	}
	if res.err != nil {
		return "", "", res.err
	}
	tok, err := exchangeCode(ctx, l, d, res.code, redirect, verifier)
	if err != nil {
		return "", "", err
	}
	return tok, nonce, nil
}

// scope is the scope lex asks for: login.scopes, default openid profile email.
func (l *LoginConfig) scope() string {
	if len(l.Scopes) == 0 {
		return "openid profile email"
	}
	return strings.Join(l.Scopes, " ")
}

// exchangeCode trades the authorization code for the ID token.
func exchangeCode(ctx context.Context, l *LoginConfig, d *discovery, code, redirect, verifier string) (string, error) {
	status, body, err := postForm(ctx, idpClient, d.TokenEndpoint, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "client_id": {l.ClientID}, "code_verifier": {verifier}})
	if err != nil {
		return "", fmt.Errorf("identity provider token endpoint: %w", err)
	}
	tok, err := parseTokenReply(status, body)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK || tok.IDToken == "" {
		return "", fmt.Errorf("identity provider token endpoint: HTTP %d: %s%s", status, tok.Error, describe(tok.Desc))
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
