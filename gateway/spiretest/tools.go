package spiretest

import (
	"fmt"
	"os"
	"os/exec"
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
	root, err := ToolsDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "spire-"+Version)
	p := Programs{Server: filepath.Join(dir, "spire-server"), Agent: filepath.Join(dir, "spire-agent")}
	if present(p) {
		return p
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
	if present(p) { // built by another test binary while we waited
		return p
	}
	mod, err := toolsModule()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("building SPIRE %s into %s (once; several minutes on a cold cache; \"make spire\" does it ahead)", Version, dir)
	start := time.Now()
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "build", "-o", tmp+"/", "github.com/spiffe/spire/cmd/spire-server", "github.com/spiffe/spire/cmd/spire-agent")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building SPIRE %s in %s: %v\n%s", Version, mod, err, out)
	}
	for _, name := range []string{"spire-server", "spire-agent"} {
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("built SPIRE %s in %v", Version, time.Since(start).Round(time.Second))
	return p
}

func present(p Programs) bool {
	for _, f := range []string{p.Server, p.Agent} {
		if fi, err := os.Stat(f); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// toolsModule finds cmd/internal/tools/spire beside the lexgate module's go.mod.
func toolsModule() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("spiretest: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("spiretest: not inside the lexgate module")
	}
	dir := filepath.Join(filepath.Dir(gomod), "cmd", "internal", "tools", "spire")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("spiretest: tools module: %w", err)
	}
	return dir, nil
}
