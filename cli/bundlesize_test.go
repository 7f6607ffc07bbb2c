package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// TestBundleSize checks that the size announced before encrypting is exactly
// what writeBundle and age produce, for trees that exercise tar's corners:
// empty files, sizes on and next to block and chunk boundaries, directories,
// names long enough to need PAX records, and non-ASCII names.
func TestBundleSize(t *testing.T) {
	long := strings.Repeat("very-long-directory-name/", 8) + "file.txt"
	for _, tc := range []struct {
		name  string
		files map[string]int
	}{
		{"empty file", map[string]int{"a": 0}},
		{"one byte", map[string]int{"a": 1}},
		{"block", map[string]int{"a": 512}},
		{"block+1", map[string]int{"a": 513}},
		{"age chunk", map[string]int{"a": 64 << 10}},
		{"age chunk-1", map[string]int{"a": 64<<10 - 1}},
		{"two age chunks+1", map[string]int{"a": 128<<10 + 1}},
		{"tree", map[string]int{"d/x": 10, "d/e/y": 0, "z": 100000}},
		{"long name", map[string]int{long: 42}},
		{"unicode", map[string]int{"Übersicht – Akte №7.pdf": 999}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "in")
			for name, n := range tc.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, bytes.Repeat([]byte{'x'}, n), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			in, err := collectInputs([]string{root})
			if err != nil {
				t.Fatal(err)
			}
			want, err := bundleSize(in)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := writeBundle(t.Context(), &buf, in); err != nil {
				t.Fatal(err)
			}
			if int64(buf.Len()) != want {
				t.Fatalf("bundleSize = %d, writeBundle wrote %d bytes", want, buf.Len())
			}
		})
	}
}

// TestAgePayloadSize checks the payload size formula against age itself.
func TestAgePayloadSize(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3 << 16, 1<<20 + 17} {
		hdr := &countWriter{}
		if _, err := age.Encrypt(hdr, id.Recipient()); err != nil {
			t.Fatal(err)
		}
		all := &countWriter{}
		w, err := age.Encrypt(all, id.Recipient())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(w, zeros{}, n); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := hdr.n + agePayloadSize(n); got != all.n {
			t.Errorf("plaintext %d: predicted %d ciphertext bytes, age wrote %d", n, got, all.n)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestPruneStates: states and spools older than the limit go, fresh ones stay,
// and a spool without a state goes once it is old.
func TestPruneStates(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	old := now.Add(-staleAfter - time.Hour)
	files := map[string]time.Time{
		"a.json": old, "a.age": now, // an old state: both go
		"b.json": now, "b.age": old, // a fresh state keeps its spool
		"c.age": old, // an orphan spool
		"d.age": now, // a fresh orphan (a send just starting)
	}
	for name, mt := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mt, mt)
	}
	removed := pruneStates(dir, staleAfter, now)
	if len(removed) != 1 || filepath.Base(removed[0]) != "a.json" {
		t.Errorf("removed %q, want a.json", removed)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != "b.age b.json d.age" {
		t.Errorf("left %q, want b.age b.json d.age", left)
	}
}
