package store_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lexgate/lexgate/gateway/store"
)

// TestDirectReader: aligned reads (direct where the file system allows) and
// unaligned ones (through the page cache) return the file's bytes; a read that
// reaches the end is short, the next one io.EOF; Close leaves the caller's file
// open.
func TestDirectReader(t *testing.T) {
	want := make([]byte, 3*store.DirectAlign*64+1234)
	rand.Read(want)
	p := filepath.Join(t.TempDir(), "x.age")
	if err := os.WriteFile(p, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := store.NewDirectReader(f)
	aligned := store.AlignedBuffer(64 * store.DirectAlign)
	for _, tc := range []struct {
		name string
		buf  []byte
		off  int64
		n    int
		err  error
	}{
		{"aligned", aligned, store.DirectAlign * 64, len(aligned), nil},
		{"aligned, reaching the end", aligned, store.DirectAlign * 64 * 3, 1234, nil},
		{"unaligned offset", make([]byte, 1000), 17, 1000, nil},
		{"unaligned buffer", aligned[1 : 1+store.DirectAlign], store.DirectAlign, store.DirectAlign, nil},
		{"at the end", make([]byte, 10), int64(len(want)), 0, io.EOF},
	} {
		n, err := r.ReadAt(tc.buf, tc.off)
		if n != tc.n || !errors.Is(err, tc.err) && (tc.err != nil || err != nil) {
			t.Errorf("%s: ReadAt = %d, %v; want %d, %v", tc.name, n, err, tc.n, tc.err)
			continue
		}
		if !bytes.Equal(tc.buf[:n], want[tc.off:tc.off+int64(n)]) {
			t.Errorf("%s: other bytes than the file's", tc.name)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); err != nil {
		t.Fatalf("the caller's file after Close: %v", err)
	}
}
