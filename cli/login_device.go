package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The OAuth 2.0 Device Authorization Grant (RFC 8628) for lex login
// --device: lex asks the provider for a device code and a user code, the
// person approves on another device, and lex polls the token endpoint.

// deviceGrantType is the grant_type of the device access token request.
const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// Defaults where the provider's answer omits them: RFC 8628 3.2 says to
// poll every 5 seconds; expires_in is required, lex waits as long as for a
// browser when it is missing.
const (
	defaultDeviceInterval = 5 * time.Second
	slowDownStep          = 5 * time.Second // RFC 8628 3.5: slow_down adds 5 seconds
	maxDeviceBackoff      = time.Minute     // the longest wait after failed connections
)

// deviceAuth is the device authorization response (RFC 8628 3.2).
type deviceAuth struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// tokenReply is the token endpoint's answer to a poll: an ID token, or an
// OAuth error code.
type tokenReply struct {
	Status  int    `json:"-"`
	IDToken string `json:"id_token"`
	Error   string `json:"error"`
	Desc    string `json:"error_description"`
}

// parseTokenReply reads a token endpoint's reply body.
func parseTokenReply(status int, body []byte) (tokenReply, error) {
	r := tokenReply{Status: status}
	if err := json.Unmarshal(body, &r); err != nil {
		return tokenReply{Status: status}, fmt.Errorf("identity provider token endpoint: HTTP %d, not a JSON answer: %w", status, err)
	}
	r.Status = status
	return r, nil
}

// Errors of the device grant, for errors.Is.
var (
	errDeviceDenied  = errors.New("the sign-in was denied")
	errDeviceExpired = errors.New("the sign-in code expired before it was approved")
)

// devicePoll is the polling state machine of RFC 8628 3.5.
type devicePoll struct {
	interval time.Duration // wait before the next poll
	deadline time.Time     // the device code's expiry
	code     string        // the user code, for messages
}

// next decides what a token reply means: the ID token (done), poll again
// after p.interval (again; slow_down raises the interval), or an error that
// ends the sign-in.
func (p *devicePoll) next(r tokenReply) (idToken string, again bool, err error) {
	switch r.Error {
	case "":
		if r.Status != http.StatusOK {
			return "", false, fmt.Errorf("identity provider token endpoint: HTTP %d without an error code", r.Status)
		}
		if r.IDToken == "" {
			return "", false, errors.New("the identity provider approved the sign-in but sent no ID token: allow client lex the openid scope")
		}
		return r.IDToken, false, nil
	case "authorization_pending":
		return "", true, nil
	case "slow_down":
		p.interval += slowDownStep
		return "", true, nil
	case "access_denied":
		return "", false, fmt.Errorf("%w at the identity provider (code %s)%s: no certificate was issued; run lex login --device again to retry",
			errDeviceDenied, p.code, describe(r.Desc))
	case "expired_token":
		return "", false, fmt.Errorf("%w (code %s)%s: run lex login --device again and approve within the time it gives",
			errDeviceExpired, p.code, describe(r.Desc))
	default:
		return "", false, fmt.Errorf("identity provider token endpoint: HTTP %d: %s%s", r.Status, r.Error, describe(r.Desc))
	}
}

func describe(desc string) string {
	if desc == "" {
		return ""
	}
	return " (" + desc + ")"
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deviceGrant runs the device authorization grant and returns the ID
// token. It prints the verification address and user code on say, then
// polls the token endpoint, waiting with wait between polls; verbose, if
// not nil, is told what each poll got.
func deviceGrant(ctx context.Context, hc *http.Client, l *LoginConfig, d *discovery, say, verbose io.Writer,
	wait func(context.Context, time.Duration) error) (string, error) {
	if d.DeviceAuthorizationEndpoint == "" {
		return "", fmt.Errorf("identity provider %s has no device authorization endpoint (RFC 8628) in its discovery document: "+
			"sign in without --device on a machine with a browser, or ask for the device grant to be enabled", l.Issuer)
	}
	da, err := requestDeviceCode(ctx, hc, l, d)
	if err != nil {
		return "", err
	}
	p := &devicePoll{interval: time.Duration(da.Interval) * time.Second, code: da.UserCode}
	if p.interval <= 0 {
		p.interval = defaultDeviceInterval
	}
	validity := time.Duration(da.ExpiresIn) * time.Second
	if validity <= 0 {
		validity = loginTimeout
	}
	p.deadline = time.Now().Add(validity)
	fmt.Fprintf(say, "To sign in, open this address on any device with a browser (your phone will do):\n\n  %s\n\nand enter the code:  %s\n\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(say, "(or open %s, which fills in the code)\n", da.VerificationURIComplete)
	}
	fmt.Fprintf(say, "The code is valid for %v. Waiting for the sign-in to be approved...\n", validity.Round(time.Second))
	for {
		if err := wait(ctx, p.interval); err != nil {
			return "", fmt.Errorf("waiting for the sign-in to be approved: %w", err)
		}
		if !time.Now().Before(p.deadline) {
			return "", fmt.Errorf("%w (code %s, valid for %v): run lex login --device again and approve within that time",
				errDeviceExpired, da.UserCode, validity.Round(time.Second))
		}
		status, body, err := postForm(ctx, hc, d.TokenEndpoint, url.Values{"grant_type": {deviceGrantType}, "device_code": {da.DeviceCode}, "client_id": {l.ClientID}})
		if err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("identity provider token endpoint: %w", err)
			}
			// RFC 8628 3.5: on a failed connection, back off
			// exponentially and try again while the code lives.
			p.interval = max(p.interval, min(2*p.interval, maxDeviceBackoff))
			fmt.Fprintf(say, "identity provider token endpoint: %v; trying again in %v\n", err, p.interval)
			continue
		}
		r, err := parseTokenReply(status, body)
		if err != nil {
			return "", err
		}
		tok, again, err := p.next(r)
		if err != nil || !again {
			return tok, err
		}
		if verbose != nil {
			fmt.Fprintf(verbose, "the identity provider answered %s; asking again in %v\n", r.Error, p.interval)
		}
	}
}

// requestDeviceCode asks the device authorization endpoint for a code.
func requestDeviceCode(ctx context.Context, hc *http.Client, l *LoginConfig, d *discovery) (*deviceAuth, error) {
	status, body, err := postForm(ctx, hc, d.DeviceAuthorizationEndpoint, url.Values{"client_id": {l.ClientID}, "scope": {l.scope()}})
	if err != nil {
		return nil, fmt.Errorf("identity provider device authorization: %w", err)
	}
	if status != http.StatusOK {
		r, _ := parseTokenReply(status, body)
		if r.Error == "unauthorized_client" || r.Error == "invalid_client" {
			return nil, fmt.Errorf("the identity provider does not allow client %q the device grant (%s%s): ask for it to be enabled, or sign in without --device",
				l.ClientID, r.Error, describe(r.Desc))
		}
		return nil, fmt.Errorf("identity provider device authorization: HTTP %d: %s%s", status, r.Error, describe(r.Desc))
	}
	var da deviceAuth
	if err := json.Unmarshal(body, &da); err != nil {
		return nil, fmt.Errorf("identity provider device authorization: %w", err)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, errors.New("identity provider device authorization: its answer lacks the device code, user code or verification address")
	}
	return &da, nil
}

// postForm posts form to u and returns the status and (at most 1 MiB of)
// the body.
func postForm(ctx context.Context, hc *http.Client, u string, form url.Values) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}
