package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	fmtlog "github.com/transparency-dev/formats/log"

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

// TestCheckConsistency: a grown log is consistent with its past checkpoints; a
// shrunk one is truncated; another tree of the same size under the same key is a
// fork; another tree that is larger is a rewrite.
func TestCheckConsistency(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "shared.key")
	open := func(name string) *audit.Log {
		l, err := audit.Open(t.Context(), audit.Config{Dir: filepath.Join(dir, name), KeyFile: key, Origin: "test.example/lexgate-audit"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b := open("a"), open("b")
	v, _ := audit.ParseVerifier(a.VerifierKey())
	cpAt := func(l *audit.Log, idx uint64) *audit.Receipt {
		r, err := l.Receipt(t.Context(), idx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	checkpoint := func(r *audit.Receipt) *fmtlog.Checkpoint {
		cp, err := audit.OpenCheckpoint([]byte(r.Checkpoint), v)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	ia := appendN(t, a, 3, "spiffe://test.example/alice")
	small := cpAt(a, ia[0])
	ia = append(ia, appendN(t, a, 20, "spiffe://test.example/alice")...)
	big := cpAt(a, ia[len(ia)-1])
	ib := appendN(t, b, len(ia), "spiffe://test.example/mallory")
	other := cpAt(b, ib[len(ib)-1])
	reader := a.Reader()
	if err := audit.CheckConsistency(t.Context(), reader, checkpoint(small), checkpoint(big)); err != nil {
		t.Errorf("grown log: %v", err)
	}
	for _, tc := range []struct {
		name       string
		old, new   *audit.Receipt
		how        string
		fetchFromB bool
	}{
		{"truncated", big, small, "truncated", false},
		{"rewritten", small, other, "rewritten", true},
	} {
		r := reader
		if tc.fetchFromB {
			r = b.Reader()
		}
		err := audit.CheckConsistency(t.Context(), r, checkpoint(tc.old), checkpoint(tc.new))
		var ie *audit.InconsistencyError
		if !errors.As(err, &ie) || ie.How != tc.how {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if cb, ca := checkpoint(other), checkpoint(big); cb.Size == ca.Size {
		err := audit.CheckConsistency(t.Context(), b.Reader(), ca, cb)
		var ie *audit.InconsistencyError
		if !errors.As(err, &ie) || ie.How != "forked" {
			t.Errorf("forked: %v", err)
		}
	} else {
		t.Errorf("sizes %d and %d: the fork case did not arise", cb.Size, ca.Size)
	}
}

// TestReceiptFileEveryByte flips one bit of every byte of a receipt file in turn:
// no altered file verifies.
func TestReceiptFileEveryByte(t *testing.T) {
	l := openLog(t, t.TempDir())
	idx := appendN(t, l, 6, "spiffe://test.example/alice")
	r, err := l.Receipt(t.Context(), idx[3])
	if err != nil {
		t.Fatal(err)
	}
	v, _ := audit.ParseVerifier(l.VerifierKey())
	good := r.Marshal()
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 1
		bad, err := audit.ParseReceipt(b)
		if err != nil {
			continue
		}
		if _, _, err := audit.VerifyReceipt(bad, v); err == nil {
			t.Errorf("flipping byte %d (%q in %q) still verifies", i, good[i], good[max(0, i-20):min(len(good), i+20)])
		}
	}
}
