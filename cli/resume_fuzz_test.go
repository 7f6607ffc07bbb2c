package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/lexgate/lexgate/gateway/api"
)

// FuzzLoadCheckpoint: whatever the checkpoint file holds, loading it never
// panics, and a checkpoint it accepts describes the signed ciphertext and a
// staging directory of this transfer inside the destination.
func FuzzLoadCheckpoint(f *testing.F) {
	const id = "0123456789abcdef0123456789abcdef"
	m := api.Manifest{CiphertextSHA256: "ab", CiphertextSize: 10 << 20}
	seed, _ := json.Marshal(checkpoint{Version: checkpointVersion, ID: id, CiphertextSHA256: "ab", CiphertextSize: 10 << 20,
		Dest: "/d", Staging: "/d/" + stagingPrefix(id) + "1", Header: []byte("age-encryption.org/v1\n"), Chunk: 1, Plain: 70000,
		Files: []BundleFile{{Path: "a", Size: 1, SHA256: "00"}}, Partial: &partialEntry{Name: "b", Size: 8 << 20, Written: 1}})
	f.Add(seed)
	f.Add([]byte("{"))
	f.Add([]byte(`{"version":1,"chunk":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		dest := filepath.Join(dir, "d")
		os.MkdirAll(filepath.Join(dest, stagingPrefix(id)+"1"), 0o700)
		path := filepath.Join(dir, id+".resume")
		os.WriteFile(path, data, 0o600)
		ck, _, err := loadCheckpoint(path, id, m, dest)
		if err != nil {
			return
		}
		if ck.ID != id || ck.CiphertextSize != m.CiphertextSize || filepath.Dir(ck.Staging) != dest || ck.offset() >= m.CiphertextSize {
			t.Fatalf("accepted %+v", ck)
		}
	})
}
