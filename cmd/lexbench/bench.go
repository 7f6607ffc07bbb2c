package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options is a parsed lexbench command line.
type options struct {
	bin    string // directory of the lex and lexgate binaries
	size   int64  // bytes in the random test file
	runs   int    // runs per measurement; the median is reported
	json   bool   // JSON output instead of a table
	keep   bool   // keep the temporary directory
	parent string // where to make the temporary directory ("" = the system's)
	// sftpFront measures the SFTP front beside sshd instead of age and lex.
	sftpFront bool
	// cipher, if set, is the SSH cipher every sftp command asks for (-c),
	// against sshd and the front alike.
	cipher string
	// files is how many files the production case makes (0: no production
	// case), of fileSize bytes each.
	files    int
	fileSize int64
	// getCache is the page-cache state of the served file before each get of
	// -sftp-front: cold, warm, both or as-is (see pagecache.go).
	getCache string
}

// floorBytes is what each CPU floor is measured over: enough for the
// coarse accounting of thread CPU time, whatever the test file's size.
const floorBytes = 256 << 20

// bench is one lexbench run: its working directory, the test file, the processes
// it started and what it measured.
type bench struct {
	opt     options
	log     io.Writer // progress lines
	dir     string    // temporary working directory
	file    string    // the random test file
	lex     string    // absolute path of bin/lex
	lexgate string    // absolute path of bin/lexgate
	daemons []*daemon // started long-running processes, stopped by cleanup
	rep     *report
}

// run performs every measurement and returns the report. Progress goes to log.
// Whatever happens, the processes it started are stopped and, unless o.keep, its
// temporary directory is removed before it returns.
func run(ctx context.Context, o options, log io.Writer) (_ *report, err error) {
	b := &bench{opt: o, log: log}
	if err := b.checkPrograms(); err != nil {
		return nil, err
	}
	b.dir, err = os.MkdirTemp(o.parent, "lexbench-")
	if err != nil {
		return nil, err
	}
	defer b.cleanup()
	b.rep = newReport(o)
	b.rep.LoadBefore = loadAverage()

	b.logf("working directory %s", b.dir)
	b.file = b.path("input", "bench.bin")
	if err := writeRandomFile(b.file, o.size); err != nil {
		return nil, fmt.Errorf("writing the test file: %w", err)
	}
	b.logf("wrote %s of random data to %s", humanBytes(o.size), b.file)

	type stage struct {
		name string
		fn   func(context.Context) error
	}
	stages := []stage{{"age", b.benchAge}, {"sftp", b.benchSFTP}, {"lex", b.benchLex}}
	stages = append(stages, stage{"CPU floors", func(context.Context) error {
		dir, err := mkdir(b.path("floors"))
		if err != nil {
			return err
		}
		return b.benchFloors(floorBytes, dir)
	}})
	if o.files > 0 {
		stages = append(stages, stage{"production", b.benchProduction})
	}
	if o.sftpFront {
		stages = []stage{{"sftp and sftp front", b.benchSFTPFront}}
	}
	for _, stage := range stages {
		if err := stage.fn(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted during the %s stage", stage.name)
			}
			return nil, fmt.Errorf("%s: %w", stage.name, err)
		}
	}
	b.rep.LoadAfter = loadAverage()
	b.rep.finish()
	return b.rep, nil
}

// checkPrograms fails early, naming what is missing, when a program the bench
// drives is not installed.
func (b *bench) checkPrograms() error {
	var err error
	if b.lex, err = filepath.Abs(filepath.Join(b.opt.bin, "lex")); err != nil {
		return err
	}
	if b.lexgate, err = filepath.Abs(filepath.Join(b.opt.bin, "lexgate")); err != nil {
		return err
	}
	var missing []string
	for _, p := range []string{b.lex, b.lexgate} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p+" (run \"make build\")")
		}
	}
	if _, err := os.Stat(sshdPath); err != nil {
		missing = append(missing, sshdPath+" (install openssh-server, or run \"make deb-deps\")")
	}
	for _, name := range []string{"sftp", "ssh-keygen"} {
		if _, err := lookPath(name); err != nil {
			missing = append(missing, name+" (install openssh-client, or run \"make deb-deps\")")
		}
	}
	if _, err := lookPath("go"); err != nil {
		missing = append(missing, "go (needed to build the pinned age CLI)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing programs:\n  %s", strings.Join(missing, "\n  "))
	}
	return nil
}

// cleanup stops every daemon still running and removes the working directory
// unless -keep was given.
func (b *bench) cleanup() {
	for i := len(b.daemons) - 1; i >= 0; i-- {
		if err := b.daemons[i].stop(10 * time.Second); err != nil {
			b.logf("stopping %s: %v", b.daemons[i].name, err)
		}
	}
	if b.opt.keep {
		b.logf("kept %s", b.dir)
		return
	}
	if err := os.RemoveAll(b.dir); err != nil {
		b.logf("removing %s: %v", b.dir, err)
	}
}

// logf prints one progress line.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "lexbench: %s\n", fmt.Sprintf(format, args...))
}

// path joins elem onto the working directory.
func (b *bench) path(elem ...string) string {
	return filepath.Join(append([]string{b.dir}, elem...)...)
}

// mkdir creates the directory path (and parents) and returns it.
func mkdir(path string) (string, error) {
	return path, os.MkdirAll(path, 0o700)
}

// writeRandomFile writes size incompressible pseudo-random bytes (ChaCha8, seeded
// from the OS) to path.
func writeRandomFile(path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	if _, err := io.CopyN(f, rand.NewChaCha8(seed), size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkSize fails unless path is a regular file of want bytes.
func checkSize(path string, want int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() != want {
		return fmt.Errorf("%s: %d bytes, want %d", path, fi.Size(), want)
	}
	return nil
}

// sizeFlag is a byte count with an optional unit: B, KB, MB, GB (powers of 1000)
// or KiB, MiB, GiB (powers of 1024).
type sizeFlag int64

func (s *sizeFlag) String() string { return humanBytes(int64(*s)) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

// parseSize parses "1GiB", "8MiB", "500MB", "4096".
func parseSize(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
	}
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range units {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional unit such as MiB or GB", v)
	}
	return int64(f * float64(mult)), nil
}

// humanBytes formats n with binary units.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', -1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', -1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', -1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// median returns the median of ds (the mean of the middle two for an even count).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// settle flushes dirty pages to disk before a measurement, so that writeback left
// over from the previous one (sftp, for one, does not fsync) does not slow it.
func settle() { syscall.Sync() }

// loadAverage is the first three fields of /proc/loadavg: other work on the host
// skews the numbers, so the report shows it.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
