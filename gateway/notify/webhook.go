package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lexgate/lexgate/gateway/store"
)

// Standard Webhooks (https://www.standardwebhooks.com) headers: the event
// id (also the idempotency key), the Unix time of the attempt, and the
// signatures "v1,BASE64(HMAC-SHA256(secret, id.timestamp.body))".
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// decodeSecret decodes a "whsec_" + base64 secret.
func decodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), "whsec_")
	if !ok {
		return nil, errors.New(`a Standard Webhooks secret starts with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 24 {
		return nil, errors.New(`want "whsec_" followed by the base64 of at least 24 random bytes`)
	}
	return key, nil
}

// Sign returns the webhook-signature header value of body: "v1," and the
// base64 HMAC-SHA256 of "id.timestamp.body" under key.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts.Unix())
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a Standard Webhooks request as a receiver does: a
// signature in the header list matches, and the timestamp is within
// tolerance of now (replays of old requests are refused).
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	id, tsText := h.Get(HeaderID), h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(tsText, 10, 64)
	if id == "" || err != nil {
		return errors.New("notify: webhook: missing id or timestamp")
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("notify: webhook: timestamp %v outside tolerance", ts)
	}
	want := Sign(key, id, ts, body)
	for _, sig := range strings.Fields(h.Get(HeaderSignature)) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("notify: webhook: no valid signature")
}

// WebhookBody is the JSON a webhook receives.
type WebhookBody struct {
	Type      string    `json:"type"`      // the event kind, such as "transfer.ready"
	Timestamp time.Time `json:"timestamp"` // when the event was queued
	Data      Payload   `json:"data"`
	EventID   string    `json:"event_id"`
}

type webhook struct {
	cfg    WebhookConfig
	key    []byte
	client *http.Client
}

func newWebhook(c WebhookConfig) (*webhook, error) {
	secret := c.Secret
	if c.SecretFile != "" {
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("notify: webhook %s: secret_file: %w", c.Name, err)
		}
		secret = string(b)
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("notify: webhook %s: %w", c.Name, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		if tc.RootCAs, err = loadPool(c.CAFile); err != nil {
			return nil, fmt.Errorf("notify: webhook %s: %w", c.Name, err)
		}
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4}
	return &webhook{cfg: c, key: key, client: &http.Client{Transport: tr, Timeout: c.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return p, nil
}

// deliver POSTs the event; any 2xx is acceptance, anything else a failure
// to retry.
func (w *webhook) deliver(ctx context.Context, ev store.Event, p Payload, now time.Time) error {
	if !w.cfg.IncludeMatter {
		p.Matter = ""
	}
	body, err := json.Marshal(WebhookBody{Type: ev.Kind, Timestamp: ev.Created, Data: p, EventID: ev.ID})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderID, ev.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(w.key, ev.ID, now, body))
	req.Header.Set("Idempotency-Key", ev.ID)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(snippet)))
	}
	return nil
}
