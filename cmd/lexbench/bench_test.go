package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchSmall runs the whole bench on an 8 MiB file with freshly built lex and
// lexgate binaries. Without OpenSSH it skips, except under CI=true, where a
// missing sshd or sftp is a failure.
func TestBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sshd and two gateways")
	}
	bin := buildForBench(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	parent := t.TempDir()
	var log bytes.Buffer
	rep, err := run(ctx, options{bin: bin, size: 8 << 20, runs: 1, parent: parent, files: 200, fileSize: 20_000}, &log)
	if err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s", err, log.String())
	}

	for _, r := range rep.Rows {
		if r.MBps <= 0 || len(r.RunSeconds) != 1 {
			t.Errorf("row %q: %.1f MB/s, %d runs", r.Name, r.MBps, len(r.RunSeconds))
		}
		if r.Baseline != "" && r.Ratio <= 0 {
			t.Errorf("row %q: no ratio to %s", r.Name, r.Baseline)
		}
	}
	if len(rep.Gateways) != 3 || rep.GatewayPeakRSSMiB <= 0 {
		t.Errorf("gateways: %+v, peak %.1f MiB", rep.Gateways, rep.GatewayPeakRSSMiB)
	}
	if len(rep.Targets) != 6 {
		t.Errorf("targets: %+v", rep.Targets)
	}
	if rep.ProductionFiles != 200 || rep.ProductionBytes != 200*20_000 {
		t.Errorf("production: %d files of %d bytes", rep.ProductionFiles, rep.ProductionBytes)
	}
	if len(rep.Floors) != 10 || len(rep.Budgets) != len(ends) {
		t.Errorf("floors %+v, budgets %+v", rep.Floors, rep.Budgets)
	}
	for _, f := range rep.Floors {
		if f.SecondsPerGiB <= 0 {
			t.Errorf("floor %s: %.3f s/GiB", f.Name, f.SecondsPerGiB)
		}
	}
	for _, b := range rep.Budgets {
		if b.MeasuredPerGiB <= 0 || b.FloorsPerGiB <= 0 {
			t.Errorf("budget %+v", b)
		}
	}

	if len(rep.Ceilings) != 2 {
		t.Errorf("ceilings: %+v", rep.Ceilings)
	}
	for _, c := range rep.Ceilings {
		if c.AtFloors <= 0 || c.AtMeasured <= 0 || c.AtSFTPUse <= 0 {
			t.Errorf("ceiling %+v", c)
		}
	}

	var table bytes.Buffer
	if err := rep.writeTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"age encrypt PQ", "sftp get", "lex send quic", "lex receive tcp", "gateway peak RSS",
		rowProdGet, rowProdRcv, "receive, client", "sum of its floors", "ratio ceiling", "server CPU s"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Rows) != len(rep.Rows) {
		t.Errorf("JSON does not read back (%v):\n%s", err, js.String())
	}

	// Everything it started is stopped and its directory removed.
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		if data, err := os.ReadFile(c); err == nil && bytes.Contains(data, []byte(parent)) {
			t.Errorf("still running: %s", bytes.ReplaceAll(data, []byte{0}, []byte{' '}))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(parent, "*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	t.Logf("\n%s", table.String())
}

// TestBenchSFTPFrontSmall runs -sftp-front on an 8 MiB file, two runs (sshd
// first, then the front first), gets in both cache states: every row has two
// runs, the cold gets started with none of the served file in the page cache
// and the warm ones with all of it, and the ratios and targets are there.
func TestBenchSFTPFrontSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sshd and a gateway")
	}
	bin := buildForBench(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log bytes.Buffer
	rep, err := run(ctx, options{bin: bin, size: 8 << 20, runs: 2, parent: t.TempDir(), sftpFront: true, cipher: frontCipher, getCache: cacheBoth}, &log)
	if err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s", err, log.String())
	}
	if len(rep.Rows) != 6 || len(rep.Targets) != 3 {
		t.Fatalf("%d rows, %d targets; want 6 and 3", len(rep.Rows), len(rep.Targets))
	}
	for _, r := range rep.Rows {
		if r.MBps <= 0 || len(r.RunSeconds) != 2 || r.Baseline != "" && r.Ratio <= 0 {
			t.Errorf("row %q: %.1f MB/s, %d runs, ratio %.2f", r.Name, r.MBps, len(r.RunSeconds), r.Ratio)
		}
		want := -1.0
		switch {
		case strings.HasSuffix(r.Name, "cold cache"):
			want = 0
		case strings.HasSuffix(r.Name, "warm cache"):
			want = 100
		}
		for _, p := range r.ResidentPercent {
			if want < 0 || p != want {
				t.Errorf("row %q: %.1f%% resident before a get, want %.0f%%", r.Name, p, want)
			}
		}
		if want >= 0 && len(r.ResidentPercent) != 2 {
			t.Errorf("row %q: residency of %d gets recorded, want 2", r.Name, len(r.ResidentPercent))
		}
		// The server's CPU is measured for sshd (its reaped sessions) as for
		// the gateway, and the rest of the machine's for every command.
		if r.GatewayCPUSeconds <= 0 || len(r.OtherCPUSeconds) != 2 || len(r.StealSeconds) != 2 {
			t.Errorf("row %q: server CPU %.2f s, other CPU %v, steal %v", r.Name, r.GatewayCPUSeconds, r.OtherCPUSeconds, r.StealSeconds)
		}
	}
	var table bytes.Buffer
	if err := rep.writeTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sftp get via front, cold cache", "sftp get, warm cache", "resident", "vs sshd, cold", "server CPU s"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	t.Logf("\n%s", table.String())
}

// buildForBench builds lex and lexgate for a bench run and returns their
// directory. Without OpenSSH or root it skips, except under CI=true, where
// that is a failure.
func buildForBench(t *testing.T) string {
	t.Helper()
	for _, p := range []string{sshdPath, "sftp", "ssh-keygen"} {
		if _, err := lookPath(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (run \"make deb-deps\")", p)
			}
			t.Skipf("%s is missing (run \"make deb-deps\")", p)
		}
	}
	if os.Geteuid() != 0 {
		// sshd must run as root to authenticate a login.
		if os.Getenv("CI") == "true" {
			t.Fatal("the bench runs sshd, which needs root")
		}
		t.Skip("the bench runs sshd, which needs root")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/lexgate/lexgate/cmd/lex", "github.com/lexgate/lexgate/cmd/lexgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building lex and lexgate: %v\n%s", err, out)
	}
	return bin
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"1GiB": 1 << 30, "8MiB": 8 << 20, "500MB": 500e6, "4096": 4096, "1.5KiB": 1536, "2g": 2 << 30,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "0", "ten"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

func TestMedian(t *testing.T) {
	s := time.Second
	if got := median([]time.Duration{3 * s, 1 * s, 2 * s}); got != 2*s {
		t.Errorf("odd: %v", got)
	}
	if got := median([]time.Duration{4 * s, 1 * s, 2 * s, 3 * s}); got != 2500*time.Millisecond {
		t.Errorf("even: %v", got)
	}
}
