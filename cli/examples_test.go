package cli

import (
	"path/filepath"
	"testing"
)

// TestExampleConfig loads examples/lex.yaml through the real config parser,
// with the checks every command that talks to the gateway makes.
func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig(filepath.Join("..", "examples", "lex.yaml"))
	if err != nil {
		t.Fatalf("examples/lex.yaml: %v", err)
	}
	if err := c.checkNetwork(); err != nil {
		t.Errorf("examples/lex.yaml: %v", err)
	}
	if _, err := c.logVerifier(); err != nil {
		t.Errorf("examples/lex.yaml: log_key: %v", err)
	}
}
