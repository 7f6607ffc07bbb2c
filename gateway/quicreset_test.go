package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestResetKeyPersists: the QUIC stateless reset key is made 0600 on first
// start and is the same after a restart, which is what lets a restarted
// gateway reset the connections of the process before it.
func TestResetKeyPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := loadResetKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, statelessResetKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode())
	}
	k2, err := loadResetKey(dir)
	if err != nil || *k1 != *k2 {
		t.Fatalf("second start: %v; same key %v", err, k2 != nil && *k1 == *k2)
	}
	os.WriteFile(filepath.Join(dir, statelessResetKeyFile), []byte("short"), 0o600)
	if _, err := loadResetKey(dir); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("a damaged key file: %v", err)
	}
}
