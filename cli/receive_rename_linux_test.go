package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestRenameNoReplace pins that the rename refuses a name that exists,
// leaving both entries as they were.
func TestRenameNoReplace(t *testing.T) {
	from, to := t.TempDir(), t.TempDir()
	writeTree(t, from, map[string]string{"d/f": "new"})
	writeTree(t, to, map[string]string{"d": "old"})
	fd, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	td, err := os.Open(to)
	if err != nil {
		t.Fatal(err)
	}
	defer td.Close()
	err = renameNoReplace(fd, td, "d")
	if errors.Is(err, errRenameUnsupported) {
		t.Fatalf("the test's temporary directory has no RENAME_NOREPLACE: %v", err)
	}
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(filepath.Join(to, "d")); string(b) != "old" {
		t.Errorf("replaced: %q", b)
	}
	if err := os.Remove(filepath.Join(to, "d")); err != nil {
		t.Fatal(err)
	}
	if err := renameNoReplace(fd, td, "d"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(to, "d", "f")); string(b) != "new" {
		t.Errorf("moved folder holds %q", b)
	}
}
