package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/internal/engines"
)

// TestLoadTiny runs lexload with tiny numbers against a real lexgate, then
// (-backends embedded,cluster) against three real replicas on PostgreSQL
// and MariaDB: both classes complete transfers, nothing fails, every
// completed transfer is received, and each gateway's descriptors come back
// to where they were. Without the engines the cluster half skips (fails
// under CI=true, where make deb-deps installed them).
func TestLoadTiny(t *testing.T) {
	backends := "embedded,cluster"
	if _, err := engines.PostgresBin(); err != nil {
		missing(t, "PostgreSQL", err)
		backends = "embedded"
	} else if _, _, err := engines.MariaDBBin(); err != nil {
		missing(t, "MariaDB", err)
		backends = "embedded"
	}
	bin := filepath.Join(t.TempDir(), "lexgate")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lexgate/lexgate/cmd/lexgate").CombinedOutput(); err != nil {
		t.Fatalf("go build lexgate: %v\n%s", err, out)
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o711) // the database servers run as their own users
	o, err := parseFlags([]string{"-lexgate", bin, "-dir", dir, "-duration", "2s", "-backends", backends,
		"-small", "4", "-small-size", "65536", "-large", "1", "-large-size", "3145728", "-chunk", "1048576", "-receivers", "2"})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	rs, err := load(context.Background(), o, &log)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, log.String())
	}
	if len(rs) != len(o.backends) {
		t.Fatalf("%d reports for backends %v", len(rs), o.backends)
	}
	var out bytes.Buffer
	for _, r := range rs {
		r.print(&out)
	}
	printSummary(&out, rs)
	t.Logf("\n%s", out.String())
	for _, r := range rs {
		if r.errors() != 0 {
			t.Errorf("%s: %d errors", r.backend, r.errors())
		}
		if r.leaked() {
			t.Errorf("%s: descriptors leaked", r.backend)
		}
		completed := 0
		for _, s := range r.classes {
			if len(s.lat) == 0 {
				t.Errorf("%s: class %s completed no transfer", r.backend, s.c.name)
			}
			completed += len(s.lat) - s.notRecv
		}
		if r.recv.ok != completed {
			t.Errorf("%s: %d transfers received, %d completed and handed over", r.backend, r.recv.ok, completed)
		}
		want := 1
		if r.backend == backendCluster {
			want = 3
		}
		if len(r.gateways) != want {
			t.Errorf("%s: %d gateways, want %d", r.backend, len(r.gateways), want)
		}
		for _, g := range r.gateways {
			if g.hwm <= 0 {
				t.Errorf("%s: no peak RSS read for %s", r.backend, g.name)
			}
		}
		if r.elapsed < 2*time.Second {
			t.Errorf("%s: ran %v", r.backend, r.elapsed)
		}
	}
	if !strings.Contains(out.String(), "errors: 0") {
		t.Errorf("report:\n%s", out.String())
	}
}

// missing reports an engine that is not installed: the cluster half of a
// test is left out, or the test fails under CI=true.
func missing(t *testing.T, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true (make deb-deps installs it): %v", what, err)
	}
	t.Logf("%s not available (make deb-deps installs it): the cluster backend is left out: %v", what, err)
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-duration", "0s"},
		{"-small", "0", "-large", "0"},
		{"-chunk", "0"},
		{"-receivers", "0"},
		{"-replicas", "0"},
		{"-backends", "embedded,s3"},
		{"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}
