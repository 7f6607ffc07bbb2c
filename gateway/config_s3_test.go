package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/store"
)

// TestConfigS3Keys: the S3 ciphertext keys of a replica's YAML config load
// into the store's config, the secret key file resolved against the config's
// directory; a misspelt key is refused, naming it.
func TestConfigS3Keys(t *testing.T) {
	dir := t.TempDir()
	base := `listen: 127.0.0.1:0
identity:
  svid_cert: pki/gateway.crt
  svid_key: pki/gateway.key
store:
  dir: data
  driver: postgres
  replica: r1
  postgres:
    dsn: postgres://lexgate@127.0.0.1:5432/lexgate
  ciphertext: s3
  s3:
    endpoint: https://s3.internal:7070
    bucket: lexgate-ciphertext
    region: eu-west-1
    prefix: firm-a/
    access_key_id: LEXGATE
    secret_key_file: s3.secret
    part_size_mib: 16
    part_buffers: 4
`
	path := filepath.Join(dir, "lexgate.yaml")
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := gateway.LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	want := store.S3Config{Endpoint: "https://s3.internal:7070", Bucket: "lexgate-ciphertext", Region: "eu-west-1",
		Prefix: "firm-a/", AccessKeyID: "LEXGATE", SecretKeyFile: filepath.Join(dir, "s3.secret"), PartSizeMiB: 16, PartBuffers: 4}
	if cfg.Store.Ciphertext != store.CiphertextS3 || cfg.Store.S3 != want {
		t.Errorf("store: ciphertext %q, s3 %+v; want s3, %+v", cfg.Store.Ciphertext, cfg.Store.S3, want)
	}
	bad := strings.Replace(base, "secret_key_file:", "secret_file:", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.LoadConfig(path); err == nil || !strings.Contains(err.Error(), "secret_file") {
		t.Errorf("LoadConfig with a misspelt key = %v, want an error naming secret_file", err)
	}
}
