package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// daemon is a long-running child (sshd, a gateway) in its own process group, so
// that stopping it also stops whatever it forked, and so that a terminal's Ctrl-C
// reaches only lexbench, which then stops it in order.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// startDaemon starts prog with args, its output appended to logPath, and registers
// it for cleanup.
func (b *bench) startDaemon(name, logPath, prog string, args ...string) (*daemon, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig is a safety net should lexbench itself be killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{})}
	b.daemons = append(b.daemons, d)
	go func() {
		d.err = cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	return d, nil
}

// pid is the daemon's process id.
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// exited reports whether the daemon has exited.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the daemon's process group and waits up to grace for it
// to exit, then kills the group. Stopping an exited daemon does nothing.
func (d *daemon) stop(grace time.Duration) error {
	if d.exited() {
		return nil
	}
	pgid := d.pid() // the group leader: Setpgid made the group id the pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(grace):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-d.done
	return fmt.Errorf("did not exit within %s of SIGTERM; killed", grace)
}

// execResult is one timed run of a command.
type execResult struct {
	wall   time.Duration // wall clock from start to exit
	cpu    time.Duration // user + system CPU time of the process (and its waited-for children)
	stdout string
	stderr string
}

// runTimed runs prog with args to completion and times it, capturing its output.
// A non-zero exit is an error carrying the end of its stderr.
func runTimed(ctx context.Context, dir, prog string, args ...string) (execResult, error) {
	return execTimed(ctx, dir, true, prog, args...)
}

// runDiscard is runTimed with stdout connected to /dev/null, for a program whose
// output is the bulk data being measured: a pipe into a buffer would cost more
// than the program itself.
func runDiscard(ctx context.Context, prog string, args ...string) (execResult, error) {
	return execTimed(ctx, "", false, prog, args...)
}

func execTimed(ctx context.Context, dir string, capture bool, prog string, args ...string) (execResult, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	if capture {
		cmd.Stdout = &stdout
	} // else os/exec connects stdout to /dev/null
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	r := execResult{wall: time.Since(start), stdout: stdout.String(), stderr: stderr.String()}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		return r, fmt.Errorf("%s %s: %w%s", prog, strings.Join(args, " "), err, tail(r.stderr))
	}
	return r, nil
}

// tail formats the last lines of a command's stderr for an error message.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 12 {
		lines = lines[len(lines)-12:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	return "\n    " + strings.Join(lines, "\n    ")
}

// lookPath finds a program on $PATH, then in the sbin directories a non-root
// $PATH may lack.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// waitFor polls ready every 50ms until it returns nil, the daemon exits, ctx ends
// or timeout passes. The daemon's log is quoted when it exits.
func waitFor(ctx context.Context, d *daemon, logPath string, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = ready(); last == nil {
			return nil
		}
		select {
		case <-d.done:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s exited (%v) before it was ready:%s", d.name, d.err, tail(string(log)))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s: %v", d.name, timeout, last)
		}
	}
}
