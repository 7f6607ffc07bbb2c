package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FuzzLoginTokenReply: any token endpoint body parses or is refused
// without panicking, and a parsed reply drives the poll state machine
// without panicking.
func FuzzLoginTokenReply(f *testing.F) {
	f.Add(200, []byte(`{"id_token":"a.b.c"}`))
	f.Add(400, []byte(`{"error":"authorization_pending"}`))
	f.Add(400, []byte(`{"error":"slow_down","error_description":"x"}`))
	f.Add(502, []byte(`<html>`))
	f.Add(400, []byte(`{"error":7}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := parseTokenReply(status, body)
		if err != nil {
			return
		}
		p := &devicePoll{interval: time.Second}
		tok, again, err := p.next(r)
		if tok != "" && (again || err != nil) {
			t.Fatalf("next(%+v) = %q, %v, %v: a token with more polling or an error", r, tok, again, err)
		}
		if p.interval < time.Second {
			t.Fatalf("interval fell to %v", p.interval)
		}
	})
}

// TestLoginDevicePollNext: each token endpoint answer of RFC 8628 3.5 moves
// the polling state machine as the RFC says.
func TestLoginDevicePollNext(t *testing.T) {
	for _, tc := range []struct {
		name         string
		reply        tokenReply
		wantToken    string
		wantAgain    bool
		wantErr      error
		wantErrText  string
		wantInterval time.Duration
	}{
		{"pending", tokenReply{Status: 400, Error: "authorization_pending"}, "", true, nil, "", 5 * time.Second},
		{"slow down adds 5s", tokenReply{Status: 400, Error: "slow_down"}, "", true, nil, "", 10 * time.Second},
		{"approved", tokenReply{Status: 200, IDToken: "h.p.s"}, "h.p.s", false, nil, "", 5 * time.Second},
		{"approved without id token", tokenReply{Status: 200}, "", false, nil, "sent no ID token", 5 * time.Second},
		{"denied", tokenReply{Status: 400, Error: "access_denied"}, "", false, errDeviceDenied, "run lex login --device again", 5 * time.Second},
		{"expired", tokenReply{Status: 400, Error: "expired_token", Desc: "gone"}, "", false, errDeviceExpired, "(gone)", 5 * time.Second},
		{"other error", tokenReply{Status: 400, Error: "invalid_grant"}, "", false, nil, "HTTP 400: invalid_grant", 5 * time.Second},
		{"500 without code", tokenReply{Status: 500}, "", false, nil, "HTTP 500 without an error code", 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &devicePoll{interval: 5 * time.Second, code: "ABCD-EFGH"}
			tok, again, err := p.next(tc.reply)
			if tok != tc.wantToken || again != tc.wantAgain {
				t.Errorf("next = %q, again %v; want %q, %v", tok, again, tc.wantToken, tc.wantAgain)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if (tc.wantErrText == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErrText)) {
				t.Errorf("err = %v, want one containing %q", err, tc.wantErrText)
			}
			if p.interval != tc.wantInterval {
				t.Errorf("interval = %v, want %v", p.interval, tc.wantInterval)
			}
		})
	}
}

// fakeDeviceProvider serves a device authorization endpoint and a token
// endpoint answering the scripted replies in turn: the faults a real
// provider does not produce on demand (slow_down, a reply that is not JSON).
func fakeDeviceProvider(t *testing.T, interval, expiresIn int, replies ...string) (*discovery, *atomic.Int32) {
	t.Helper()
	var polls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device_authorization", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("client_id") != "lex" || r.FormValue("scope") != "openid profile email" {
			http.Error(w, `{"error":"invalid_request"}`, 400)
			return
		}
		fmt.Fprintf(w, `{"device_code":"dc-1","user_code":"WDJB-MJHT","verification_uri":"https://sso.example/device",
			"verification_uri_complete":"https://sso.example/device?user_code=WDJB-MJHT","expires_in":%d,"interval":%d}`, expiresIn, interval)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("grant_type") != deviceGrantType || r.FormValue("device_code") != "dc-1" || r.FormValue("client_id") != "lex" {
			http.Error(w, `{"error":"invalid_request"}`, 400)
			return
		}
		n := int(polls.Add(1))
		body := replies[min(n, len(replies))-1]
		if body == dropConnection {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if !strings.Contains(body, "id_token") {
			w.WriteHeader(http.StatusBadRequest)
		}
		fmt.Fprint(w, body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &discovery{Issuer: srv.URL, TokenEndpoint: srv.URL + "/token", DeviceAuthorizationEndpoint: srv.URL + "/device_authorization"}, &polls
}

// dropConnection, as a scripted reply, closes the connection unanswered.
const dropConnection = "drop"

// TestLoginDeviceGrantPolling: lex prints the address and code, waits the
// provider's interval before each poll, adds 5 seconds on slow_down,
// backs off exponentially after a failed connection, keeps polling while
// pending and stops on the token or an error.
func TestLoginDeviceGrantPolling(t *testing.T) {
	const (
		pending = `{"error":"authorization_pending"}`
		slow    = `{"error":"slow_down"}`
		ok      = `{"access_token":"at","token_type":"Bearer","id_token":"h.p.s"}`
	)
	for _, tc := range []struct {
		name      string
		interval  int
		replies   []string
		wantWaits []time.Duration
		wantToken string
		wantErr   string
	}{
		{"pending then approved", 2, []string{pending, pending, ok}, []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second}, "h.p.s", ""},
		{"slow_down twice", 1, []string{pending, slow, pending, slow, ok},
			[]time.Duration{1 * time.Second, 1 * time.Second, 6 * time.Second, 6 * time.Second, 11 * time.Second}, "h.p.s", ""},
		{"no interval given: 5s", 0, []string{ok}, []time.Duration{5 * time.Second}, "h.p.s", ""},
		{"denied", 1, []string{pending, `{"error":"access_denied"}`}, []time.Duration{time.Second, time.Second}, "", "the sign-in was denied"},
		{"connection dropped: back off", 1, []string{dropConnection, dropConnection, pending, ok},
			[]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}, "h.p.s", ""},
		{"not JSON", 1, []string{`<html>bad gateway</html>`}, []time.Duration{time.Second}, "", "not a JSON answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, polls := fakeDeviceProvider(t, tc.interval, 600, tc.replies...)
			var waits []time.Duration
			wait := func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			var say, verbose bytes.Buffer
			l := &LoginConfig{Issuer: d.Issuer, ClientID: "lex"}
			tok, err := deviceGrant(t.Context(), http.DefaultClient, l, d, &say, &verbose, wait)
			if tok != tc.wantToken || (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("deviceGrant = %q, %v; want %q, error %q", tok, err, tc.wantToken, tc.wantErr)
			}
			if fmt.Sprint(waits) != fmt.Sprint(tc.wantWaits) || int(polls.Load()) != len(tc.wantWaits) {
				t.Errorf("waits %v and %d polls, want %v", waits, polls.Load(), tc.wantWaits)
			}
			if n := strings.Count(verbose.String(), "answered authorization_pending; asking again in"); n != strings.Count(strings.Join(tc.replies, ""), "authorization_pending") {
				t.Errorf("-v said %q: want a line for each authorization_pending", verbose.String())
			}
			for _, s := range []string{"https://sso.example/device\n", "enter the code:  WDJB-MJHT", "valid for 10m0s"} {
				if !strings.Contains(say.String(), s) {
					t.Errorf("lex said %q, want %q in it", say.String(), s)
				}
			}
		})
	}
}

// TestLoginDeviceGrantLocalDeadline: lex stops polling once the device code's
// expires_in has passed, even if the provider never says expired_token;
// an interrupted wait ends the sign-in too.
func TestLoginDeviceGrantLocalDeadline(t *testing.T) {
	d, polls := fakeDeviceProvider(t, 1, 1, `{"error":"authorization_pending"}`)
	l := &LoginConfig{Issuer: d.Issuer, ClientID: "lex"}
	_, err := deviceGrant(t.Context(), http.DefaultClient, l, d, new(bytes.Buffer), nil, sleepCtx)
	if !errors.Is(err, errDeviceExpired) || !strings.Contains(err.Error(), "valid for 1s") {
		t.Errorf("err = %v, want the code expired", err)
	}
	if n := polls.Load(); n != 0 {
		t.Errorf("%d polls with an expired code", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := deviceGrant(ctx, http.DefaultClient, l, d, new(bytes.Buffer), nil, sleepCtx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := deviceGrant(t.Context(), http.DefaultClient, l, &discovery{TokenEndpoint: d.TokenEndpoint}, new(bytes.Buffer), nil, sleepCtx); err == nil ||
		!strings.Contains(err.Error(), "no device authorization endpoint") {
		t.Errorf("provider without the device endpoint: %v", err)
	}
}

// idp signs ID tokens with a P-256 key and serves its JWKS.
type idp struct {
	key  *ecdsa.PrivateKey
	kid  string
	disc *discovery
}

func newIDP(t *testing.T) *idp {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{key: key, kid: "k1"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: p.kid, Algorithm: "ES256", Use: "sig"}}})
	}))
	t.Cleanup(srv.Close)
	p.disc = &discovery{Issuer: "https://sso.example", JWKSURI: srv.URL}
	return p
}

func (p *idp) sign(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLoginVerifyIDToken: lex accepts only an ID token signed by the provider's
// published key, for its client, from its issuer, unexpired, with the
// sign-in's nonce, and then only a multi-factor one (login.mfa_amr,
// login.mfa_acr).
func TestLoginVerifyIDToken(t *testing.T) {
	p := newIDP(t)
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": "https://sso.example", "aud": "lex", "sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"nonce": "n1", "amr": []string{"pwd", "otp"}}
	}
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hmac := []byte("0123456789abcdef0123456789abcdef")
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: hmac}, nil)
	hsTok, _ := jwt.Signed(hs).Claims(good()).Serialize()
	for _, tc := range []struct {
		name, token, nonce, wantErr string
	}{
		{"good", p.sign(t, p.key, jose.ES256, "k1", good()), "n1", ""},
		{"good without kid", p.sign(t, p.key, jose.ES256, "", good()), "n1", ""},
		{"device flow: no nonce", p.sign(t, p.key, jose.ES256, "k1", with("nonce", nil)), "", ""},
		{"other audience with azp", p.sign(t, p.key, jose.ES256, "k1", with("aud", []string{"lex", "api"})), "n1", "authorized party"},
		{"azp lex", p.sign(t, p.key, jose.ES256, "k1", func() map[string]any { c := with("aud", []string{"lex", "api"}); c["azp"] = "lex"; return c }()), "n1", ""},
		{"wrong nonce", p.sign(t, p.key, jose.ES256, "k1", good()), "n2", "nonce"},
		{"nonce where none was sent", p.sign(t, p.key, jose.ES256, "k1", good()), "", "nonce"},
		{"other issuer", p.sign(t, p.key, jose.ES256, "k1", with("iss", "https://evil.example")), "n1", `issued by "https://evil.example"`},
		{"other audience", p.sign(t, p.key, jose.ES256, "k1", with("aud", "other")), "n1", `not for client "lex"`},
		{"expired", p.sign(t, p.key, jose.ES256, "k1", with("exp", now.Add(-2*time.Minute).Unix())), "n1", "expired at"},
		{"no exp", p.sign(t, p.key, jose.ES256, "k1", with("exp", nil)), "n1", "no expiry"},
		{"no iat", p.sign(t, p.key, jose.ES256, "k1", with("iat", nil)), "n1", "no issue time"},
		{"not yet valid", p.sign(t, p.key, jose.ES256, "k1", with("nbf", now.Add(time.Hour).Unix())), "n1", "not valid yet"},
		{"forged: other key, same kid", p.sign(t, other, jose.ES256, "k1", good()), "n1", "does not verify"},
		{"unknown kid", p.sign(t, other, jose.ES256, "k9", good()), "n1", `key "k9"`},
		{"HMAC refused", hsTok, "n1", "unexpected signature algorithm"},
		{"garbage", "a.b.c", "n1", "ID token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &LoginConfig{Issuer: "https://sso.example", ClientID: "lex"}
			c, err := verifyIDToken(t.Context(), http.DefaultClient, l, p.disc, tc.token, tc.nonce, now)
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("verifyIDToken: %v, want error %q", err, tc.wantErr)
			}
			if err == nil && c.Subject != "alice" {
				t.Errorf("subject %q", c.Subject)
			}
		})
	}
}

// TestLoginRequireMFA: the ID token must name a second factor in amr
// (login.mfa_amr, default otp or mfa) or an accepted acr (login.mfa_acr).
func TestLoginRequireMFA(t *testing.T) {
	for _, tc := range []struct {
		name    string
		amr     []string
		acr     string
		cfgAMR  []string
		cfgACR  []string
		wantErr string
	}{
		{"otp", []string{"pwd", "otp"}, "", nil, nil, ""},
		{"mfa", []string{"mfa"}, "", nil, nil, ""},
		{"password only", []string{"pwd"}, "", nil, nil, "multi-factor authentication is required: the identity provider reports that you signed in with pwd"},
		{"no amr", nil, "", nil, nil, "no amr claim"},
		{"hwk configured", []string{"pwd", "hwk"}, "", []string{"hwk"}, nil, ""},
		{"otp not configured", []string{"otp"}, "", []string{"hwk"}, nil, "wants one of hwk"},
		{"acr accepted", []string{"pwd"}, "phr", nil, []string{"phr", "phrh"}, ""},
		{"acr not accepted", []string{"pwd"}, "1", nil, []string{"phr"}, `or acr phr (it says "1")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &LoginConfig{MFAAMR: tc.cfgAMR, MFAACR: tc.cfgACR}
			err := l.requireMFA(&idClaims{AMR: tc.amr, ACR: tc.acr})
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("requireMFA: %v, want error %q", err, tc.wantErr)
			}
		})
	}
}

// TestLoginNoBrowserHere: lex picks the device grant only in an SSH
// session without a display.
func TestLoginNoBrowserHere(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"desktop", map[string]string{"DISPLAY": ":0"}, false},
		{"no ssh, no display (a console)", map[string]string{}, false},
		{"ssh", map[string]string{"SSH_CONNECTION": "192.0.2.7 50022 192.0.2.8 22"}, true},
		{"ssh tty only", map[string]string{"SSH_TTY": "/dev/pts/3"}, true},
		{"ssh with X forwarding", map[string]string{"SSH_CONNECTION": "x", "DISPLAY": "localhost:10.0"}, false},
		{"ssh with wayland", map[string]string{"SSH_TTY": "/dev/pts/3", "WAYLAND_DISPLAY": "wayland-0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := noBrowserHere(func(k string) string { return tc.env[k] }) != ""; got != tc.want {
				t.Errorf("noBrowserHere = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLoginAutoDeviceFallsBack: with a provider that offers no device
// sign-in, the flow lex picked by itself falls back to the redirect and
// says so, rather than fail.
func TestLoginAutoDeviceFallsBack(t *testing.T) {
	redirect := authCodeFlow
	t.Cleanup(func() { authCodeFlow = redirect })
	used := false
	authCodeFlow = func(context.Context, *LoginConfig, *discovery, io.Writer) (string, string, error) {
		used = true
		return "tok", "n", nil
	}
	var say bytes.Buffer
	tok, _, err := autoDeviceFlow("this is an SSH session without a display", nil)(t.Context(), &LoginConfig{Issuer: "https://sso.example"}, &discovery{}, &say)
	if err != nil || tok != "tok" || !used {
		t.Fatalf("auto flow = %q, %v (redirect used %v)", tok, err, used)
	}
	if want := "offers no device sign-in: using the redirect"; !strings.Contains(say.String(), want) {
		t.Errorf("lex said %q, want %q", say.String(), want)
	}
}
