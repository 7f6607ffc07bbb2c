package gateway

import (
	"bytes"
	"fmt"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/lexgate/lexgate/gateway/identity"
)

// Marshal writes c as lexgate.yaml: the keys LoadConfig reads, with every
// setting left at its zero value (its default) omitted, so a generated config
// says only what it chose. Tools and tests that start a lexgate process write
// their config with it rather than by hand (lexgate help, the demo, the
// benchmarks, lexload and the crash tests), so it never falls behind Config.
func (c Config) Marshal() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(c); err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	prune(&doc)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	return b.Bytes(), nil
}

// prune drops the mapping entries of n whose value is a zero scalar or an
// empty collection, recursively; it reports whether n itself is then empty.
func prune(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.MappingNode:
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !prune(n.Content[i+1]) {
				kept = append(kept, n.Content[i], n.Content[i+1])
			}
		}
		n.Content = kept
		return len(n.Content) == 0
	case yaml.SequenceNode:
		for _, c := range n.Content {
			prune(c) // an element stays, even an empty one: its place matters
		}
		return len(n.Content) == 0
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return true
		case "!!str":
			return n.Value == "" || n.Value == "0s"
		case "!!int", "!!float":
			return n.Value == "0"
		case "!!bool":
			return n.Value == "false"
		case "!!timestamp":
			return n.Value == "0001-01-01T00:00:00Z"
		}
	}
	return false
}

// DevConfig is a config for a gateway on 127.0.0.1 with ports the kernel
// chooses, serving as spiffe://harbor-law.example/gateway from a dev PKI
// directory written by "lexgate certs dev" (pki), both organisations
// federated, its store in dataDir: the start of every config the demo, the
// benchmarks and the process tests write.
func DevConfig(pki, dataDir string) Config {
	c := Config{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0"}
	c.Identity = identity.Config{
		SVIDCert: filepath.Join(pki, "harbor-law.example", "gateway.crt"),
		SVIDKey:  filepath.Join(pki, "harbor-law.example", "gateway.key"),
		Bundles: map[string]string{
			"harbor-law.example": filepath.Join(pki, "harbor-law.example", "bundle.pem"),
			"manila-lpo.example": filepath.Join(pki, "manila-lpo.example", "bundle.pem"),
		},
	}
	c.Store.Dir = dataDir
	return c
}
