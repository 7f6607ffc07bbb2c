package identity

import (
	"bytes"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	const doc = `
svid_cert: pki/harbor-law.example/gateway.crt
svid_key: pki/harbor-law.example/gateway.key
bundles:
  harbor-law.example: pki/harbor-law.example/bundle.pem
  manila-lpo.example: pki/manila-lpo.example/bundle.pem
workload_api: ""
revoked:
  - spiffe://harbor-law.example/paralegal/mallory
`
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.SVIDKey != "pki/harbor-law.example/gateway.key" || len(cfg.Bundles) != 2 || !slices.Equal(cfg.Revoked, []string{mallory}) {
		t.Errorf("decoded %+v", cfg)
	}
}
