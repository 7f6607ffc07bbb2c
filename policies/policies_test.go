package policies_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/policies"
)

// moduleRoot returns the directory of go.mod, where `go tool opa` runs.
func moduleRoot(t *testing.T, gobin string) string {
	t.Helper()
	out, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not in a Go module")
	}
	return filepath.Dir(gomod)
}

// opa runs the stock OPA CLI, pinned in go.mod, from the module root.
// Without a go command the test is skipped, except under CI=true.
func opa(t *testing.T, args ...string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the go command is needed to run `go tool opa`: %v", err)
		}
		t.Skipf("no go command: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), gobin, append([]string{"tool", "opa"}, args...)...)
	cmd.Dir = moduleRoot(t, gobin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool opa %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRego runs the Rego unit tests with the stock OPA CLI.
func TestRego(t *testing.T) {
	out := opa(t, "test", "policies/")
	if !strings.Contains(out, "PASS") {
		t.Errorf("opa test printed no PASS:\n%s", out)
	}
}

// TestRegoFormatted checks that every Rego file is `opa fmt` clean.
func TestRegoFormatted(t *testing.T) {
	if out := opa(t, "fmt", "-l", "policies/"); strings.TrimSpace(out) != "" {
		t.Errorf("not formatted with `go tool opa fmt -w policies/`:\n%s", out)
	}
}

// TestFS checks that the embedded policy has its entry point and data.
func TestFS(t *testing.T) {
	for _, name := range []string{"lexgate.rego", "data/organisations.json", "data/agreements.json", "data/matters.json", "data/labels.json", "data/access.json"} {
		if _, err := fs.Stat(policies.FS, name); err != nil {
			t.Error(err)
		}
	}
	tests, err := fs.Glob(policies.FS, "*_test.rego")
	if err != nil || len(tests) == 0 {
		t.Errorf("no Rego tests embedded: %v", err)
	}
}
