package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/lexgate/lexgate/internal/engines"
)

// TestClusterDemo runs the whole cluster demo on real engines and real
// replica processes: replica 1 killed with SIGKILL mid-upload and the same
// lex send completing through replica 2 in the same run, received through
// replica 3, lex audit verify clean, SFTP across replicas, and a revocation
// through replica 3 refusing replica 1's next request. Without PostgreSQL,
// MariaDB or versitygw it skips, and fails under CI=true.
func TestClusterDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the cluster demo takes a minute")
	}
	if _, err := engines.PostgresBin(); err != nil {
		missing(t, "PostgreSQL", err)
	}
	if _, _, err := engines.MariaDBBin(); err != nil {
		missing(t, "MariaDB", err)
	}
	if _, err := engines.VersityGWBin(); err != nil {
		missing(t, "versitygw", err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/lexgate/lexgate/cmd/lex", "github.com/lexgate/lexgate/cmd/lexgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The database servers run as their own users (as root): they must
	// reach the demo's directory through the test's.
	top := t.TempDir()
	for _, p := range []string{filepath.Dir(top), top} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	var out lockedBuffer // commands' output is copied in from their own goroutines
	d := &demo{bin: bin, dir: filepath.Join(top, "cluster"), size: 96 << 20, out: &out}
	err := d.run(t.Context())
	if serr := d.stopAll(); err == nil {
		err = serr
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if m := regexp.MustCompile(`failover: bytes flowing through another replica (\S+) after the SIGKILL`).FindStringSubmatch(out.String()); m != nil {
		t.Logf("failover time: %s", m[1])
	} else {
		t.Errorf("the demo did not report the failover time:\n%s", out.String())
	}
}

// missing skips a test whose outside program is not installed, or fails it
// under CI=true, where make deb-deps must have installed it.
func missing(t *testing.T, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true (make deb-deps): %v", what, err)
	}
	t.Skipf("%s not installed (make deb-deps): %v", what, err)
}

// lockedBuffer is a bytes.Buffer several goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
