package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadTiny runs lexload with tiny numbers against a real lexgate: both
// classes complete transfers, nothing fails, every completed transfer is
// received, and the gateway's descriptors come back to where they were.
func TestLoadTiny(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "lexgate")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lexgate/lexgate/cmd/lexgate").CombinedOutput(); err != nil {
		t.Fatalf("go build lexgate: %v\n%s", err, out)
	}
	o, err := parseFlags([]string{"-lexgate", bin, "-dir", t.TempDir(), "-duration", "2s",
		"-small", "4", "-small-size", "65536", "-large", "1", "-large-size", "3145728", "-chunk", "1048576", "-receivers", "2"})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r, err := load(context.Background(), o, &log)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, log.String())
	}
	var out bytes.Buffer
	r.print(&out)
	t.Logf("\n%s", out.String())
	if r.errors() != 0 {
		t.Errorf("%d errors", r.errors())
	}
	if r.leaked() {
		t.Errorf("descriptors: %+v before, %+v after", r.fdsBefore, r.fdsAfter)
	}
	completed := 0
	for _, s := range r.classes {
		if len(s.lat) == 0 {
			t.Errorf("class %s completed no transfer", s.c.name)
		}
		completed += len(s.lat) - s.notRecv
	}
	if r.recv.ok != completed {
		t.Errorf("%d transfers received, %d completed and handed over", r.recv.ok, completed)
	}
	if r.hwm <= 0 {
		t.Errorf("no peak RSS read")
	}
	if r.elapsed < 2*time.Second || !strings.Contains(out.String(), "errors: 0") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-duration", "0s"},
		{"-small", "0", "-large", "0"},
		{"-chunk", "0"},
		{"-receivers", "0"},
		{"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}
