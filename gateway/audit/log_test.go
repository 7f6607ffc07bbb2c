package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
)

func openLog(t *testing.T, dir string) *audit.Log {
	t.Helper()
	l, err := audit.Open(t.Context(), audit.Config{Dir: filepath.Join(dir, "audit"), Origin: "test.example/lexgate-audit",
		Now: func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendN(t *testing.T, l *audit.Log, n int, actor string) []uint64 {
	t.Helper()
	var out []uint64
	for i := range n {
		idx, err := l.Append(t.Context(), audit.Event{Kind: audit.KindKeyRegistration, Actor: actor,
			Keys: []string{"age1example" + string(rune('a'+i%26))}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, idx)
	}
	return out
}

func TestReceiptVerifies(t *testing.T) {
	l := openLog(t, t.TempDir())
	idx := appendN(t, l, 3, "spiffe://test.example/alice")
	r, err := l.Receipt(t.Context(), idx[1])
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.ParseVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	r2, err := audit.ParseReceipt(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	ev, cp, err := audit.VerifyReceipt(r2, v)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != audit.KindKeyRegistration || ev.Keys[0] != "age1exampleb" || cp.Size < 2 {
		t.Errorf("verified %+v under size %d", ev, cp.Size)
	}
	if i, ok := l.Find(audit.LookupKeys("spiffe://test.example/alice")); !ok || i != idx[2] {
		t.Errorf("Find = %d, %v; want %d", i, ok, idx[2])
	}
}

// TestReceiptTamper flips every byte of the entry, the proof and the checkpoint in
// turn: each must fail, naming the part that is wrong.
func TestReceiptTamper(t *testing.T) {
	l := openLog(t, t.TempDir())
	idx := appendN(t, l, 5, "spiffe://test.example/alice")
	good, err := l.Receipt(t.Context(), idx[2])
	if err != nil {
		t.Fatal(err)
	}
	v, _ := audit.ParseVerifier(l.VerifierKey())
	check := func(name string, r *audit.Receipt, want error) {
		t.Helper()
		if _, _, err := audit.VerifyReceipt(r, v); !errors.Is(err, want) {
			t.Fatalf("%s: VerifyReceipt = %v, want %v", name, err, want)
		}
	}
	for i := range len(good.Entry) {
		r := *good
		b := []byte(r.Entry)
		b[i] ^= 1
		r.Entry = string(b)
		check("entry byte", &r, audit.ErrReceiptEntry)
	}
	for j := range good.InclusionProof {
		for i := range good.InclusionProof[j] {
			r := *good
			r.InclusionProof = make([][]byte, len(good.InclusionProof))
			for k := range r.InclusionProof {
				r.InclusionProof[k] = bytes.Clone(good.InclusionProof[k])
			}
			r.InclusionProof[j][i] ^= 1
			check("proof byte", &r, audit.ErrReceiptProof)
		}
	}
	for i := range len(good.Checkpoint) {
		r := *good
		b := []byte(r.Checkpoint)
		b[i] ^= 1
		r.Checkpoint = string(b)
		check("checkpoint byte", &r, audit.ErrReceiptCheckpoint)
	}
	r := *good
	r.Index++
	check("index", &r, audit.ErrReceiptProof)
}

func TestKeyFileMode(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	fi, err := os.Stat(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	l.Close()
	if _, err := audit.Open(context.Background(), audit.Config{Dir: filepath.Join(dir, "audit"), Origin: "other"}); err == nil {
		t.Error("opened the log with a key for another origin")
	}
}
