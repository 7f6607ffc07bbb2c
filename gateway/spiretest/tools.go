package spiretest

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Programs are the paths of the SPIRE binaries.
type Programs struct {
	Server, Agent string
}

// ToolsDirEnv names the directory where the heavy test tools are kept; by
// default lexgate-tools in the user's cache directory ($HOME/.cache).
const ToolsDirEnv = "LEXGATE_TOOLS_DIR"

// ToolsDir is where built tools are kept, one directory per tool and version.
func ToolsDir() (string, error) {
	if d := os.Getenv(ToolsDirEnv); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("spiretest: no user cache directory (%v): set %s", err, ToolsDirEnv)
	}
	return filepath.Join(base, "lexgate-tools"), nil
}

// Binaries returns spire-server and spire-agent at Version, building them
// from the nested tools module (cmd/internal/tools/spire, pinned in its
// go.mod) when they are missing. Concurrent test binaries build once: the
// others wait on a lock. A build failure fails the test; it never skips.
func Binaries(t testing.TB) Programs {
	t.Helper()
	bins := Build(t, Tool{Name: "spire", Version: Version, Module: "spire",
		Packages: []string{"github.com/spiffe/spire/cmd/spire-server", "github.com/spiffe/spire/cmd/spire-agent"}})
	return Programs{Server: bins[0], Agent: bins[1]}
}

// Tool is a heavy test-only program pinned in a nested module under
// cmd/internal/tools.
type Tool struct {
	Name, Version string
	Module        string   // directory under cmd/internal/tools
	Packages      []string // main packages; the binaries take their last element's name
	Tags          string   // build tags
	Env           []string // extra environment (CGO_ENABLED=0)
}

// Build returns the paths of t's binaries in ToolsDir()/Name-Version,
// building them first if they are missing (once across concurrent test
// binaries: the others wait on a lock). A failure fails the test.
func Build(t testing.TB, tool Tool) []string {
	t.Helper()
	root, err := ToolsDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, tool.Name+"-"+tool.Version)
	var paths []string
	for _, p := range tool.Packages {
		paths = append(paths, filepath.Join(dir, binName(p)))
	}
	if present(paths) {
		return paths
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if present(paths) { // built by another test binary while we waited
		return paths
	}
	mod, err := toolsModule(tool.Module)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("building %s %s into %s (once; minutes on a cold cache; \"make tools-heavy\" does it ahead)", tool.Name, tool.Version, dir)
	start := time.Now()
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-o", tmp + "/"}
	if tool.Tags != "" {
		args = append(args, "-tags", tool.Tags)
	}
	cmd := exec.Command("go", append(args, tool.Packages...)...)
	cmd.Dir = mod
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), tool.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s %s in %s: %v\n%s", tool.Name, tool.Version, mod, err, out)
	}
	for _, p := range paths {
		if err := os.Rename(filepath.Join(tmp, filepath.Base(p)), p); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("built %s %s in %v", tool.Name, tool.Version, time.Since(start).Round(time.Second))
	return paths
}

// binName is the name go build gives a main package's binary: its last
// path element, or the one before a major version suffix (…/hydra/v2).
func binName(pkg string) string {
	base := path.Base(pkg)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" {
		return path.Base(path.Dir(pkg))
	}
	return base
}

func present(paths []string) bool {
	for _, f := range paths {
		if fi, err := os.Stat(f); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// toolsModule finds cmd/internal/tools/<name> beside the lexgate module's go.mod.
func toolsModule(name string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("spiretest: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("spiretest: not inside the lexgate module")
	}
	dir := filepath.Join(filepath.Dir(gomod), "cmd", "internal", "tools", name)
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("spiretest: tools module: %w", err)
	}
	return dir, nil
}
