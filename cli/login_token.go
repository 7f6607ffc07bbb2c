package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// idTokenAlgs are the signature algorithms lex accepts on an ID token:
// asymmetric ones only (never "none", never HMAC with a public client).
var idTokenAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// idTokenLeeway is the clock skew tolerated on exp, nbf and iat.
const idTokenLeeway = time.Minute

// idClaims are the ID token's claims lex checks.
type idClaims struct {
	jwt.Claims
	Nonce string   `json:"nonce"`
	AZP   string   `json:"azp"`
	AMR   []string `json:"amr"`
	ACR   string   `json:"acr"`
}

// verifyIDToken checks raw as an OpenID Connect ID token for l (OpenID
// Connect Core 3.1.3.7): signed by one of the provider's keys (its
// jwks_uri), issued by l.Issuer for l.ClientID (azp too, when there are
// other audiences), not expired, and carrying nonce when the flow sent one.
// The people CA checks the token again; lex checks it first so that it
// never sends a key request on a token it would not trust itself.
func verifyIDToken(ctx context.Context, hc *http.Client, l *LoginConfig, d *discovery, raw, nonce string, now time.Time) (*idClaims, error) {
	tok, err := jwt.ParseSigned(raw, idTokenAlgs)
	if err != nil {
		return nil, fmt.Errorf("the identity provider's ID token: %w", err)
	}
	var keys jose.JSONWebKeySet
	if err := getJSON(ctx, hc, d.JWKSURI, &keys); err != nil {
		return nil, fmt.Errorf("identity provider %s: its signing keys: %w", l.Issuer, err)
	}
	c, err := claimsWithKeys(tok, keys)
	if err != nil {
		return nil, fmt.Errorf("the identity provider's ID token: %w: refusing it", err)
	}
	if err := c.check(l, d, nonce, now); err != nil {
		return nil, fmt.Errorf("the identity provider's ID token: %w: refusing it", err)
	}
	return c, nil
}

// claimsWithKeys verifies tok's signature with the key its header names
// (or, without a kid, any key of the set) and returns its claims.
func claimsWithKeys(tok *jwt.JSONWebToken, set jose.JSONWebKeySet) (*idClaims, error) {
	if len(tok.Headers) != 1 {
		return nil, errors.New("not a single-signature token")
	}
	kid := tok.Headers[0].KeyID
	keys := set.Keys
	if kid != "" {
		keys = set.Key(kid)
	}
	for _, k := range keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var c idClaims
		if err := tok.Claims(k.Key, &c); err == nil {
			return &c, nil
		}
	}
	if kid != "" && len(keys) == 0 {
		return nil, fmt.Errorf("signed with key %q, which the provider does not publish", kid)
	}
	return nil, errors.New("its signature does not verify with the provider's keys")
}

// check validates the claims of a token whose signature verified.
func (c *idClaims) check(l *LoginConfig, d *discovery, nonce string, now time.Time) error {
	if c.Expiry == nil {
		return errors.New("it has no expiry")
	}
	if c.IssuedAt == nil {
		return errors.New("it has no issue time")
	}
	err := c.Claims.ValidateWithLeeway(jwt.Expected{Issuer: d.Issuer, AnyAudience: jwt.Audience{l.ClientID}, Time: now}, idTokenLeeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return fmt.Errorf("it expired at %s (is this machine's clock right?)", c.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return fmt.Errorf("it was issued by %q, not %q", c.Issuer, d.Issuer)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return fmt.Errorf("it was issued for %v, not for client %q", []string(c.Audience), l.ClientID)
	case err != nil:
		return err
	}
	if len(c.Audience) > 1 && c.AZP != l.ClientID {
		return fmt.Errorf("its authorized party is %q, not %q", c.AZP, l.ClientID)
	}
	if c.Nonce != nonce {
		return errors.New("it does not carry this sign-in's nonce (start lex login again)")
	}
	return nil
}

// requireMFA refuses a sign-in the ID token does not report as
// multi-factor: one of login.mfa_amr in amr, or acr in login.mfa_acr.
func (l *LoginConfig) requireMFA(c *idClaims) error {
	want := l.MFAAMR
	if len(want) == 0 {
		want = defaultMFAAMR
	}
	for _, m := range c.AMR {
		if slices.Contains(want, m) {
			return nil
		}
	}
	if c.ACR != "" && slices.Contains(l.MFAACR, c.ACR) {
		return nil
	}
	acr := ""
	if len(l.MFAACR) > 0 {
		acr = fmt.Sprintf(" or acr %s (it says %q)", strings.Join(l.MFAACR, ", "), c.ACR)
	}
	return fmt.Errorf("multi-factor authentication is required: the identity provider reports that you signed in with %s; "+
		"login.mfa_amr wants one of %s%s: sign in again with your second factor",
		orNone(c.AMR), strings.Join(want, ", "), acr)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no method named (no amr claim)"
	}
	return strings.Join(s, ", ")
}
