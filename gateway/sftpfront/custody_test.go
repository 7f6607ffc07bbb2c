package sftpfront

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSealedCustody: a custodial identity opens again with the same host key
// and account, and with nothing else: another host key, another account's
// name or SPIFFE ID, a file readable by others.
func TestSealedCustody(t *testing.T) {
	dir := t.TempDir()
	hostKey := []byte("host key file bytes")
	a := &account{Account: Account{Name: "dms", ID: "spiffe://harbor-law.example/legacy/dms"}}
	path := custodyPath(filepath.Join(dir, "host_key"), a.Name)
	id, err := loadCustody(hostKey, path, a)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadCustody(hostKey, path, a)
	if err != nil || again.String() != id.String() {
		t.Fatalf("reopened identity differs (err %v)", err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "AGE-SECRET-KEY") {
		t.Fatal("identity stored in the clear")
	}
	for name, tc := range map[string]struct {
		key []byte
		a   *account
	}{
		"other host key":  {[]byte("another host key"), a},
		"other account":   {hostKey, &account{Account: Account{Name: "scanner", ID: a.ID}}},
		"other SPIFFE ID": {hostKey, &account{Account: Account{Name: a.Name, ID: "spiffe://harbor-law.example/x"}}},
	} {
		if _, err := loadCustody(tc.key, path, tc.a); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: opened, or the error does not name the file: %v", name, err)
		}
	}
	os.Chmod(path, 0o644)
	if _, err := loadCustody(hostKey, path, a); err == nil {
		t.Error("a sealed identity readable by others was accepted")
	}
}
