package audit_test

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/lexgate/lexgate/gateway/audit"
)

// FuzzOpenCheckpoint: checkpoint bytes from anywhere (a gateway, lex's cache
// directory) never panic the parser, and the only checkpoints that verify are
// the ones the log signed: the same origin, size and root hash. The log key is
// derived from a fixed seed, so the committed corpus holds checkpoints that
// verify, and the fuzzer mutates real ones.
func FuzzOpenCheckpoint(f *testing.F) {
	dir := f.TempDir()
	skey, _, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), "lexgate-audit")
	if err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.key"), []byte(skey+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	// Fixed salts too: the private entries' commitments, and so the roots, are the same on every run.
	l, err := audit.Open(f.Context(), audit.Config{Dir: filepath.Join(dir, "audit"), Rand: bytes.NewReader(bytes.Repeat([]byte{9}, 1<<10))})
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	var cps [][]byte
	for range 3 {
		idx, err := l.Append(f.Context(), sampleEvent())
		if err != nil {
			f.Fatal(err)
		}
		r, err := l.Receipt(f.Context(), idx)
		if err != nil {
			f.Fatal(err)
		}
		cps = append(cps, []byte(r.Checkpoint))
		f.Add([]byte(r.Checkpoint))
	}
	v, err := audit.ParseVerifier(l.VerifierKey())
	if err != nil {
		f.Fatal(err)
	}
	signed := map[uint64]string{} // size → root hash
	for _, raw := range cps {
		cp, err := audit.OpenCheckpoint(raw, v)
		if err != nil {
			f.Fatal(err)
		}
		signed[cp.Size] = string(cp.Hash)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cp, err := audit.OpenCheckpoint(raw, v)
		if err != nil {
			return
		}
		h, ok := signed[cp.Size]
		if !ok || h != string(cp.Hash) || cp.Origin != l.Origin() {
			t.Fatalf("a checkpoint the log never signed verifies: %q (origin %q, size %d, hash %x; digest %x)",
				raw, cp.Origin, cp.Size, cp.Hash, sha256.Sum256(raw))
		}
	})
}
