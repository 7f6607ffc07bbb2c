package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
)

// certify makes a certificate as the sweeper does: sign, log, receipt.
func certify(t *testing.T, l *audit.Log, st audit.Statement) *audit.Certificate {
	t.Helper()
	signed, sum, err := l.SignStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := l.Append(t.Context(), audit.Event{Kind: audit.KindDestruction, Actor: st.Gateway, Transfer: st.Transfer,
		CiphertextSHA256: st.CiphertextSHA256, CiphertextSize: st.CiphertextSize, StatementSHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Receipt(t.Context(), idx)
	if err != nil {
		t.Fatal(err)
	}
	return &audit.Certificate{Version: audit.CertificateVersion, Statement: string(signed), Receipt: r}
}

var statement = audit.Statement{Gateway: "spiffe://harbor-law.example/gateway", Log: "test.example/lexgate-audit",
	Transfer: "t1", Sender: "spiffe://harbor-law.example/paralegal/alice", Recipients: []string{"spiffe://manila-lpo.example/site/review-team"},
	Matter: "HL-2026-0042", CiphertextSHA256: strings.Repeat("ab", 32), CiphertextSize: 1234,
	StoredAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), DestroyedAt: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC),
	Why: audit.WhyExpired, Detail: "its retention obligation expired"}

// TestCertificate: a certificate verifies offline and round-trips its file
// form; any change to the statement, the receipt or their binding does not.
func TestCertificate(t *testing.T) {
	l := openLog(t, t.TempDir())
	c := certify(t, l, statement)
	v, err := audit.ParseVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := audit.ParseCertificate(c.Marshal())
	if err != nil || !audit.IsCertificate(c.Marshal()) || audit.IsCertificate(c.Receipt.Marshal()) {
		t.Fatalf("ParseCertificate: %v", err)
	}
	st, ev, _, err := audit.VerifyCertificate(parsed, v)
	if err != nil || st.Transfer != "t1" || st.Why != audit.WhyExpired || ev.Kind != audit.KindDestruction {
		t.Fatalf("VerifyCertificate: %+v %v", st, err)
	}

	other := statement
	other.Transfer = "t2"
	second := certify(t, l, other)
	another := certify(t, l, audit.Statement{Transfer: "t1", CiphertextSHA256: statement.CiphertextSHA256, CiphertextSize: 1234, Why: audit.WhyPurgeOnAck})
	for _, tc := range []struct {
		name string
		mod  func(c audit.Certificate) audit.Certificate
		want error
	}{
		{"statement text changed", func(c audit.Certificate) audit.Certificate {
			c.Statement = strings.Replace(c.Statement, "retention_expired", "purge_on_ack", 1)
			return c
		}, audit.ErrCertificate},
		{"receipt of another transfer", func(c audit.Certificate) audit.Certificate { c.Receipt = second.Receipt; return c }, audit.ErrCertificate},
		{"receipt of another statement of the transfer", func(c audit.Certificate) audit.Certificate { c.Receipt = another.Receipt; return c }, audit.ErrCertificate},
		{"receipt entry altered", func(c audit.Certificate) audit.Certificate {
			r := *c.Receipt
			r.Body = strings.Replace(r.Body, `"t1"`, `"t9"`, 1)
			c.Receipt = &r
			return c
		}, audit.ErrReceiptEntry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := tc.mod(*c)
			if _, _, _, err := audit.VerifyCertificate(&bad, v); !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
		})
	}
	// Another log's key does not verify it.
	l2 := openLog(t, t.TempDir())
	v2, _ := audit.ParseVerifier(l2.VerifierKey())
	if _, _, _, err := audit.VerifyCertificate(c, v2); err == nil {
		t.Error("a certificate verified with another log's key")
	}
}

// FuzzParseCertificate: the parser and the verifier never panic, and a
// certificate that parses re-encodes to a document that parses, whose
// encoding is then stable (a missing receipt field reads back as empty).
func FuzzParseCertificate(f *testing.F) {
	f.Add([]byte(`{"version":1,"statement":"lexgate destruction statement v1\n{}\n\n— x abc=\n","receipt":{"version":1}}`))
	f.Add([]byte(`{"version":1,"statement":"","receipt":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := audit.ParseCertificate(b)
		if err != nil {
			return
		}
		again, err := audit.ParseCertificate(c.Marshal())
		if err != nil {
			t.Fatalf("re-encoded certificate does not parse: %v", err)
		}
		third, err := audit.ParseCertificate(again.Marshal())
		if err != nil {
			t.Fatalf("twice re-encoded certificate does not parse: %v", err)
		}
		x, _ := json.Marshal(again)
		y, _ := json.Marshal(third)
		if !bytes.Equal(x, y) {
			t.Fatalf("round trip changed the certificate")
		}
		v, _ := audit.ParseVerifier("test.example/lexgate-audit+01234567+AQ6C1u0qLNs3TU5bkxVJ7Lj9gi0URBs5RgWvEQWdVvDB")
		if v != nil {
			audit.VerifyCertificate(c, v)
		}
	})
}
