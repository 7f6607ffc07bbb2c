package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/audit"
)

const (
	harbor = "spiffe://harbor-law.example/paralegal/alice"
	manila = "spiffe://manila-lpo.example/site/review-team"
	gw     = "spiffe://harbor-law.example/gateway"
)

// TestPrivateEntries: a private event's leaf is a commitment holding nothing
// of the event; its receipt carries the body and salt and verifies offline;
// the bodies go to the parties only; key registrations stay public; a
// reopened log finds its entries again.
func TestPrivateEntries(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	ctx := t.Context()
	send, err := l.Append(ctx, audit.Event{Kind: audit.KindUploadComplete, Actor: harbor, Recipients: []string{manila}, Transfer: "t1", Matter: "HL-1"})
	if err != nil {
		t.Fatal(err)
	}
	swept, _ := l.Append(ctx, audit.Event{Kind: audit.KindDestruction, Actor: gw, Sender: harbor, Recipients: []string{manila}, Transfer: "t1"})
	keys, _ := l.Append(ctx, audit.Event{Kind: audit.KindKeyRegistration, Actor: manila, Keys: []string{"age1x"}})
	v, _ := audit.ParseVerifier(l.VerifierKey())

	r, err := l.Receipt(ctx, send)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.Entry, "HL-1") || strings.Contains(r.Entry, "manila") || !strings.HasPrefix(r.Entry, `{"commitment":"`) {
		t.Errorf("a private entry's leaf shows the event: %s", r.Entry)
	}
	ev, _, err := audit.VerifyReceipt(r, v)
	if err != nil || ev.Matter != "HL-1" {
		t.Fatalf("receipt: %+v %v", ev, err)
	}
	rk, _ := l.Receipt(ctx, keys)
	if rk.Body != "" || !strings.Contains(rk.Entry, "age1x") {
		t.Errorf("a key registration is not public: %+v", rk)
	}

	bodies := func(td string) []uint64 {
		var idx []uint64
		if err := l.Bodies(ctx, td, keys+1, func(b audit.Body) error { idx = append(idx, b.Index); return nil }); err != nil {
			t.Fatal(err)
		}
		return idx
	}
	for _, c := range []struct {
		td   string
		want []uint64
	}{
		{"harbor-law.example", []uint64{send, swept}},
		{"manila-lpo.example", []uint64{send, swept}},
		{"bogota-lpo.example", nil},
	} {
		if got := bodies(c.td); !slices.Equal(got, c.want) {
			t.Errorf("bodies for %s: %v, want %v", c.td, got, c.want)
		}
	}
	if got := bodies("harbor-law.example"); len(got) != 2 {
		t.Errorf("the gateway's own actions made its organisation a party: %v", got)
	}

	// Reopened: the index and the parties come back from the bodies.
	l.Close()
	l2, err := audit.Open(ctx, audit.Config{Dir: filepath.Join(dir, "audit"), Origin: "test.example/lexgate-audit"})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if i, ok := l2.Find(audit.LookupUpload("t1")); !ok || i != send {
		t.Errorf("reopened: upload of t1 at %d %v, want %d", i, ok, send)
	}
	if e, err := l2.Event(ctx, swept); err != nil || e.Kind != audit.KindDestruction {
		t.Errorf("reopened: entry %d: %+v %v", swept, e, err)
	}
}

// TestPartiesOperator: the gateway acting is no party; its organisation is
// one when one of its identities is.
func TestPartiesOperator(t *testing.T) {
	for _, c := range []struct {
		ev   audit.Event
		want []string
	}{
		{audit.Event{Actor: gw, Sender: harbor, Recipients: []string{manila}}, []string{"harbor-law.example", "manila-lpo.example"}},
		{audit.Event{Actor: gw, Recipients: []string{manila}}, []string{"manila-lpo.example"}},
		{audit.Event{Actor: "spiffe://bogota-lpo.example/x", Subject: manila}, []string{"bogota-lpo.example", "manila-lpo.example"}},
	} {
		if got := audit.Parties(c.ev, gw); !slices.Equal(got, c.want) {
			t.Errorf("Parties(%+v) = %q, want %q", c.ev, got, c.want)
		}
	}
}

// TestLeafOpen: a body or salt changed by one bit no longer opens the leaf.
func TestLeafOpen(t *testing.T) {
	body, _ := sampleEvent().Marshal()
	salt := bytes.Repeat([]byte{1}, 32)
	lf, err := audit.ParseLeaf(audit.CommitmentLeaf(audit.Commit(salt, body)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lf.Open(salt, body); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(salt)
	bad[31] ^= 1
	if _, err := lf.Open(bad, body); !errors.Is(err, audit.ErrBodyMismatch) {
		t.Errorf("altered salt: %v", err)
	}
	if _, err := lf.Open(salt, bytes.Replace(body, []byte("t1"), []byte("t2"), 1)); !errors.Is(err, audit.ErrBodyMismatch) {
		t.Errorf("altered body: %v", err)
	}
	if _, err := lf.Open(salt[:8], body); !errors.Is(err, audit.ErrBodyMismatch) {
		t.Errorf("short salt: %v", err)
	}
}

// FuzzParseLeaf: leaf bytes from a tile never panic the parser, and a leaf
// that parses re-encodes to the same bytes.
func FuzzParseLeaf(f *testing.F) {
	body, _ := sampleEvent().Marshal()
	f.Add(body)
	f.Add(audit.CommitmentLeaf(audit.Commit(make([]byte, 32), body)))
	f.Add([]byte(`{"commitment":"` + strings.Repeat("A", 64) + `"}`))
	f.Add([]byte(`{"commitment":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lf, err := audit.ParseLeaf(b)
		if err != nil {
			return
		}
		var again []byte
		if lf.Public != nil {
			again, _ = lf.Public.Marshal()
		} else {
			again = audit.CommitmentLeaf(lf.Commitment)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("leaf %q re-encodes as %q", b, again)
		}
	})
}

// TestMissingBody: a log whose bodies were lost still opens (the tree is
// intact); the entry cannot be shown, and saying so is an error.
func TestMissingBody(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	i, _ := l.Append(t.Context(), audit.Event{Kind: audit.KindAck, Actor: manila, Transfer: "t1"})
	r, _ := l.Receipt(t.Context(), i)
	l.Close()
	if !strings.HasPrefix(r.Entry, `{"commitment":"`) {
		t.Fatalf("not a private entry: %s", r.Entry)
	}
	if err := os.RemoveAll(filepath.Join(dir, "audit", "bodies")); err != nil {
		t.Fatal(err)
	}
	l2, err := audit.Open(context.Background(), audit.Config{Dir: filepath.Join(dir, "audit"), Origin: "test.example/lexgate-audit"})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if _, err := l2.Event(t.Context(), i); !errors.Is(err, audit.ErrNoBody) {
		t.Errorf("entry without its body: %v", err)
	}
}
