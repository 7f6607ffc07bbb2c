package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lexgate/lexgate/cmd/lexwan/emu"
)

// Rows of the report, in order. Sends compare with sftp put, receives with sftp get.
const (
	rowSFTPPut = "sftp put"
	rowSFTPGet = "sftp get"
	rowLexRecv = "lex receive (auto)"
)

func rowSend(t string) string { return "lex send (" + t + ")" }

// result is one timed run.
type result struct {
	Row      string
	Up       bool // LPO → firm
	Wall     time.Duration
	MBps     float64
	TimedOut bool
	EmuCPU   time.Duration // the forwarder's CPU time (all of lexwan's)
	Carried  int64         // bytes the link forwarded both ways
	Note     string        // what lex said about its transport
}

// profileReport is everything measured on one profile.
type profileReport struct {
	P     profile
	Probe emu.Probe
	Rows  []result
}

// probes and probeEvery validate the emulator before each profile.
const (
	probes     = 2000
	probeEvery = time.Millisecond
)

func (b *bench) runProfile(ctx context.Context, p profile) (*profileReport, error) {
	b.path.Set(p.params(), p.params())
	b.logf("profile %s: %v", p.Name, p)
	r := &profileReport{P: p}
	var err error
	if r.Probe, err = emu.Measure(ctx, b.path.A, b.path.B, probes, probeEvery); err != nil {
		return nil, err
	}
	b.logf("  emulator check: %v", r.Probe)
	remote := filepath.Join(b.dir, "sftp-remote.bin")
	local := filepath.Join(b.dir, "sftp-local.bin")
	defer os.Remove(remote)
	defer os.Remove(local)

	add := func(res result, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", res.Row, err)
		}
		b.logf("  %-22s %s", res.Row, res.figure())
		r.Rows = append(r.Rows, res)
		return nil
	}
	put, err := b.measure(ctx, rowSFTPPut, true, func(ctx context.Context) (*exec.Cmd, error) {
		return b.sftpCmd(ctx, fmt.Sprintf("put %q %q", b.file, remote))
	})
	if err := add(put, err); err != nil {
		return nil, err
	}
	var sent string // a transfer that arrived whole, to receive
	for _, t := range strings.Split(b.opt.sends, ",") {
		var stdout strings.Builder
		res, err := b.measure(ctx, rowSend(t), true, func(ctx context.Context) (*exec.Cmd, error) {
			// A matter of its own, so that no send resumes another's transfer.
			m := fmt.Sprintf("%s-%s-%s", matter, strings.ReplaceAll(p.Name, "%", "pct"), t)
			cmd := b.path.A.Command(ctx, b.lex, "--config", b.alice, "-v", "--transport", t,
				"send", "--json", "--to", team, "--matter", m, b.file)
			cmd.Stdout = &stdout
			return cmd, nil
		})
		if err := add(res, err); err != nil {
			return nil, err
		}
		var sr struct {
			ID string `json:"id"`
		}
		if !res.TimedOut && sent == "" && json.Unmarshal([]byte(lastJSON(stdout.String())), &sr) == nil {
			sent = sr.ID
		}
	}
	if !b.opt.receive {
		return r, nil
	}
	get, err := b.measure(ctx, rowSFTPGet, false, func(ctx context.Context) (*exec.Cmd, error) {
		if _, err := os.Stat(remote); err != nil {
			return nil, fmt.Errorf("nothing to get: the put did not finish")
		}
		return b.sftpCmd(ctx, fmt.Sprintf("get %q %q", remote, local))
	})
	if err := add(get, err); err != nil {
		return nil, err
	}
	if sent == "" {
		b.logf("  no lex send finished in time: lex receive skipped")
		return r, nil
	}
	out := filepath.Join(b.dir, "received")
	defer os.RemoveAll(out)
	recv, err := b.measure(ctx, rowLexRecv, false, func(ctx context.Context) (*exec.Cmd, error) {
		os.RemoveAll(out)
		return b.path.A.Command(ctx, b.lex, "--config", b.team, "-v", "receive", sent, "-o", out), nil
	})
	if err := add(recv, err); err != nil {
		return nil, err
	}
	if !recv.TimedOut {
		if fi, err := os.Stat(filepath.Join(out, filepath.Base(b.file))); err != nil || fi.Size() != b.opt.size {
			return nil, fmt.Errorf("lex receive: the file did not come back whole (%v)", err)
		}
	}
	return r, nil
}

// sftpTimeoutFactor stretches -timeout for the sftp rows, the baseline of every
// ratio.
const sftpTimeoutFactor = 3

// measure runs the command mk makes, bounded by -timeout, and times it. If it
// times out, its figure is what the link carried in its direction over the time.
func (b *bench) measure(ctx context.Context, row string, up bool, mk func(context.Context) (*exec.Cmd, error)) (result, error) {
	res := result{Row: row, Up: up}
	timeout := b.opt.timeout
	if row == rowSFTPPut || row == rowSFTPGet {
		timeout *= sftpTimeoutFactor // the baseline: a ratio needs it whole
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd, err := mk(runCtx)
	if err != nil {
		return res, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	ab0, ba0 := b.path.Stats()
	cpu0 := selfCPU()
	start := time.Now()
	err = cmd.Run()
	res.Wall = time.Since(start)
	res.EmuCPU = selfCPU() - cpu0
	ab1, ba1 := b.path.Stats()
	res.Carried = ab1.Bytes - ab0.Bytes + ba1.Bytes - ba0.Bytes
	res.Note = transportNote(stderr.String())
	if b.opt.verbose {
		for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			if l != "" && !strings.Contains(l, "\r") {
				b.logf("    | %s", l)
			}
		}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return res, ctx.Err()
	case err != nil && errors.Is(runCtx.Err(), context.DeadlineExceeded):
		res.TimedOut = true
		dir := ab1.Bytes - ab0.Bytes
		if !up {
			dir = ba1.Bytes - ba0.Bytes
		}
		res.MBps = float64(dir) / 1e6 / res.Wall.Seconds()
		return res, nil
	case err != nil:
		return res, fmt.Errorf("%v: %s", err, lastLines(stderr.String(), 8))
	}
	res.MBps = float64(b.opt.size) / 1e6 / res.Wall.Seconds()
	return res, nil
}

// transportNote picks what lex -v said about its transport.
func transportNote(stderr string) string {
	var notes []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "transport:") || strings.HasPrefix(l, "bulk:") || strings.HasPrefix(l, "upload") || strings.HasPrefix(l, "download") {
			notes = append(notes, strings.TrimSpace(l))
		}
	}
	return strings.Join(notes, "; ")
}

// selfCPU is lexwan's own user + system CPU time: the forwarder's, for the
// rest of lexwan only waits.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// lastJSON returns the last top-level JSON object in s.
func lastJSON(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n{"); i >= 0 {
		return s[i+1:]
	}
	return s
}
