package certs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPrivateKeyFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, false}, {0o644, false}, {0o604, false}, {0o620, false}} {
		path := filepath.Join(dir, "k"+tc.mode.String())
		if err := os.WriteFile(path, []byte("k"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		err := CheckPrivateKeyFile("identity.svid_key", path)
		if tc.ok != (err == nil) {
			t.Errorf("mode %04o: err = %v, want ok=%v", tc.mode, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrKeyExposed) || !strings.Contains(err.Error(), "chmod 600 "+path) || !strings.Contains(err.Error(), "identity.svid_key") {
				t.Errorf("mode %04o: error %q does not name the setting, the file and the fix", tc.mode, err)
			}
		}
	}
	if err := CheckPrivateKeyFile("x", filepath.Join(dir, "missing")); err != nil {
		t.Errorf("missing file: %v", err)
	}
}
