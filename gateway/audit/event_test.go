package audit_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
)

// canonical is the encoding of sampleEvent, byte for byte: a change here is a
// change of the log's entry format and needs a new EventVersion.
const canonical = `{"v":1,"kind":"upload_complete","time":"2026-11-27T10:00:00.5Z","actor":"spiffe://harbor-law.example/paralegal/alice","action":"send","recipients":["spiffe://manila-lpo.example/site/review-team"],"transfer":"t1","matter":"HL-2026-0042","labels":["client-confidential","privileged"],"manifest_sha256":"ab","ciphertext_sha256":"cd","ciphertext_size":42,"decision":{"id":"D1","allow":true,"reasons":["ok.code"]}}`

func sampleEvent() audit.Event {
	return audit.Event{Kind: audit.KindUploadComplete,
		Time:  time.Date(2026, 11, 27, 11, 0, 0, 5e8, time.FixedZone("CET", 3600)),
		Actor: "spiffe://harbor-law.example/paralegal/alice", Action: "send",
		Recipients: []string{"spiffe://manila-lpo.example/site/review-team"}, Transfer: "t1",
		Matter: "HL-2026-0042", Labels: []string{"privileged", "client-confidential"},
		ManifestSHA256: "ab", CiphertextSHA256: "cd", CiphertextSize: 42,
		Decision: &audit.Decision{ID: "D1", Allow: true, Reasons: []string{"ok.code"}}}
}

func TestEventCanonical(t *testing.T) {
	b, err := sampleEvent().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != canonical {
		t.Fatalf("Marshal =\n%s\nwant\n%s", b, canonical)
	}
	ev, err := audit.ParseEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := ev.Marshal(); !bytes.Equal(again, b) {
		t.Errorf("round trip changed the entry:\n%s", again)
	}
}

func TestParseEventRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"not canonical":  `{"v":1, "kind":"ack","time":"2026-11-27T10:00:00Z","actor":"a"}`,
		"unknown field":  `{"v":1,"kind":"ack","time":"2026-11-27T10:00:00Z","actor":"a","x":1}`,
		"future version": `{"v":2,"kind":"ack","time":"2026-11-27T10:00:00Z","actor":"a"}`,
		"trailing data":  `{"v":1,"kind":"ack","time":"2026-11-27T10:00:00Z","actor":"a"}{}`,
		"not json":       `v=1 kind=ack`,
	} {
		if _, err := audit.ParseEvent([]byte(in)); err == nil {
			t.Errorf("%s: ParseEvent accepted %s", name, in)
		}
	}
}

// FuzzParseEvent: whatever a log entry holds, ParseEvent accepts only what
// marshals back to the same bytes.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(canonical))
	f.Add([]byte(`{"v":1,"kind":"ack","time":"2026-11-27T10:00:00Z","actor":"a"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := audit.ParseEvent(b)
		if err != nil {
			return
		}
		again, err := ev.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %q, which marshals to %q (%v)", b, again, err)
		}
	})
}

// FuzzParseReceipt: a receipt file from anywhere never panics the verifier, and
// nothing verifies but entries the log holds.
func FuzzParseReceipt(f *testing.F) {
	l, err := audit.Open(f.Context(), audit.Config{Dir: filepath.Join(f.TempDir(), "audit")})
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		idx, err := l.Append(f.Context(), sampleEvent())
		if err != nil {
			f.Fatal(err)
		}
		r, err := l.Receipt(f.Context(), idx)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.Marshal())
	}
	v, err := audit.ParseVerifier(l.VerifierKey())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := audit.ParseReceipt(b)
		if err != nil {
			return
		}
		ev, _, err := audit.VerifyReceipt(r, v)
		if err == nil && ev.Kind != audit.KindUploadComplete {
			t.Fatalf("a receipt for an entry this log never held verifies: %+v", ev)
		}
	})
}
