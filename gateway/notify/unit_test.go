package notify

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/store"
)

// TestSignStandardWebhooksVector: the signature of the Standard Webhooks
// specification's example (secret, msg id, timestamp, body) is the one
// its reference libraries compute; Verify accepts it, within tolerance only.
func TestSignStandardWebhooksVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key, err := decodeSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set(HeaderID, "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set(HeaderTimestamp, "1614265330")
	h.Set(HeaderSignature, "v1,bogus "+want)
	if err := Verify(secret, h, body, ts.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := Verify(secret, h, body, ts.Add(time.Hour), 5*time.Minute); err == nil {
		t.Error("Verify accepted a stale timestamp")
	}
	if err := Verify(secret, h, append(body, ' '), ts, 5*time.Minute); err == nil {
		t.Error("Verify accepted a changed body")
	}
}

// TestRenderTemplates: every built-in template renders for its kind with
// a subject line, and a matter appears only when given.
func TestRenderTemplates(t *testing.T) {
	m, err := newMailer(EmailConfig{SMTP: "127.0.0.1:25", From: "x@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{store.EventTransferReady, store.EventTransferReceived, store.EventTransferAcknowledged,
		store.EventTransferExpiring, store.EventTransferRefused, store.EventApprovalRequested,
		store.EventApprovalGranted, store.EventHoldPlaced, store.EventHoldLifted, store.EventRiskAlert}
	for _, k := range kinds {
		d := MailData{Kind: k, TransferID: "t1", From: "spiffe://a.example/p", Recipients: []string{"spiffe://b.example/t"},
			ExpiresAt: time.Date(2027, 1, 2, 3, 4, 0, 0, time.UTC), DecisionID: "D1", Reasons: []Reason{{"c", "m"}}, RequestID: "r1"}
		subject, body, err := m.render(k, d)
		if err != nil || subject == "" || body == "" || strings.Contains(subject+body, "M-77") {
			t.Errorf("%s: %q %q %v", k, subject, body, err)
		}
		d.Matter = "M-77"
		if subject, body, _ := m.render(k, d); !strings.Contains(subject+body, "M-77") {
			t.Errorf("%s: the allowed matter is missing", k)
		}
	}
	if !m.mails(store.EventTransferReady) || m.mails("no.such.kind") {
		t.Error("mails: wrong kinds")
	}
	if _, err := m.message("a@example.com\r\nBcc: x@example.com", "s", "b", "e", time.Now()); err == nil {
		t.Error("a header injection through an address was accepted")
	}
}

// TestParseDirectory: addresses are bare, IDs are SPIFFE IDs, unknown keys
// are errors, and matter permission is per organisation.
func TestParseDirectory(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"good", "people:\n  spiffe://a.example/p: p@a.example\ngroups:\n  security: [s@a.example]\norganisations:\n  a.example: {include_matter: true}\n", true},
		{"empty", "", true},
		{"unknown key", "peoples: {}\n", false},
		{"not a SPIFFE ID", "people:\n  alice: p@a.example\n", false},
		{"display name", "people:\n  spiffe://a.example/p: Alice <p@a.example>\n", false},
		{"bad group address", "groups:\n  security: [nope]\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseDirectory([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.name == "good" && (!d.IncludeMatter("spiffe://a.example/x") || d.IncludeMatter("spiffe://b.example/x") ||
				d.Address("spiffe://a.example/p") != "p@a.example" || len(d.Group("security")) != 1) {
				t.Errorf("directory %+v", d)
			}
		})
	}
}

// FuzzParseDirectory: any accepted directory has only bare addresses and
// SPIFFE IDs.
func FuzzParseDirectory(f *testing.F) {
	f.Add([]byte("people:\n  spiffe://a.example/p: p@a.example\ngroups:\n  security: [s@a.example]\n"))
	f.Add([]byte("organisations:\n  a.example: {include_matter: true}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDirectory(b)
		if err != nil {
			return
		}
		for id, a := range d.People {
			if !strings.HasPrefix(id, "spiffe://") || strings.ContainsAny(a, "\r\n<> ") {
				t.Fatalf("accepted %q: %q", id, a)
			}
		}
		for _, as := range d.Groups {
			for _, a := range as {
				if strings.ContainsAny(a, "\r\n<> ") {
					t.Fatalf("accepted group address %q", a)
				}
			}
		}
	})
}
