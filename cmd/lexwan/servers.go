package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lexgate/lexgate/cmd/lexwan/emu"

	"github.com/lexgate/lexgate/cmd/internal/benchkit"
)

// The dev-PKI identities of the bench, as in the demo: alice sends to the
// review team.
const (
	aliceSVID = "harbor-law.example/paralegal-alice"
	team      = "spiffe://manila-lpo.example/site/review-team"
	teamSVID  = "manila-lpo.example/site-review-team"
	matter    = "WAN-1"
)

// Ports inside the firm's namespace, which has nothing else listening.
const (
	gatewayPort = 4443
	adminPort   = 9090
	sshPort     = 22
)

// sshdPath is the OpenSSH server; it must be started by its absolute path.
const sshdPath = "/usr/sbin/sshd"

// daemon is a long-running process in a namespace, logging to a file.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  string
}

func (b *bench) startDaemon(ns emu.Netns, name, log string, args ...string) (*daemon, error) {
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := ns.Command(context.Background(), args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan error, 1), log: log}
	go func() { d.done <- cmd.Wait() }()
	b.daemons = append(b.daemons, d)
	return d, nil
}

// stop sends SIGTERM, then SIGKILL after grace.
func (d *daemon) stop(grace time.Duration) error {
	if d.cmd.ProcessState != nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("%s did not stop within %v; killed", d.name, grace)
	}
}

// waitReady polls check (run inside ns) until it succeeds, the daemon exits or
// timeout passes.
func waitReady(ctx context.Context, d *daemon, ns emu.Netns, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ns.Do(check)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case werr := <-d.done:
			d.done <- werr
			tail, _ := os.ReadFile(d.log)
			return fmt.Errorf("%s exited (%v): %s", d.name, werr, lastLines(string(tail), 10))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w (log %s)", d.name, timeout, err, d.log)
		}
	}
}

type gateway struct {
	*daemon
	addr   string
	logKey string
}

// startGateway writes a config like the demo's, starts "lexgate serve" in the
// firm's namespace and waits for /healthz.
func (b *bench) startGateway(ctx context.Context, pki string) (*gateway, error) {
	dir := filepath.Join(b.dir, "gateway")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	g := &gateway{addr: net.JoinHostPort(b.path.B.Addr.String(), fmt.Sprint(gatewayPort))}
	cfg := benchkit.GatewayConfig("lexwan", g.addr, adminPort, pki, filepath.Join(dir, "data"))
	cfgPath := filepath.Join(dir, "lexgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	var err error
	if g.daemon, err = b.startDaemon(b.path.B, "lexgate", filepath.Join(dir, "lexgate.log"), b.lexgate, "serve", "--config", cfgPath); err != nil {
		return nil, err
	}
	err = waitReady(ctx, g.daemon, b.path.B, 20*time.Second, func() error {
		return httpOK(fmt.Sprintf("127.0.0.1:%d", adminPort), "/healthz")
	})
	if err != nil {
		return nil, err
	}
	key, err := exec.CommandContext(ctx, b.lexgate, "log-key", "--config", cfgPath).Output()
	if err != nil {
		return nil, fmt.Errorf("lexgate log-key: %w", err)
	}
	g.logKey = strings.TrimSpace(string(key))
	b.logf("gateway on %s (log %s)", g.addr, g.log)
	return g, nil
}

// httpOK sends a bare HTTP/1.0 GET on a connection dialled on the calling
// thread (net/http would dial on another thread, maybe in another namespace).
func httpOK(addr, path string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.Contains(line, " 200 ") {
		return errors.New(strings.TrimSpace(line))
	}
	return nil
}

// clientConfig writes the lex config of one user and returns its path.
func (b *bench) clientConfig(user, pki, svid string) (string, error) {
	home := filepath.Join(b.dir, "clients", user)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", err
	}
	cfg := benchkit.ClientConfig(b.gw.addr, pki, svid, b.gw.logKey)
	path := filepath.Join(home, "config.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// sshd is a throwaway OpenSSH server in the firm's namespace.
type sshd struct {
	*daemon
	dir string
	key string // the client's private key
}

// startSSHD writes the server's files, starts "sshd -D -e" and waits for its
// banner (the same set-up as cmd/lexbench, on the firm's address).
func (b *bench) startSSHD(ctx context.Context) (*sshd, error) {
	set, err := benchkit.WriteSSHD(ctx, filepath.Join(b.dir, "sshd"), "lexwan", b.path.B.Addr.String(), sshPort)
	if err != nil {
		return nil, err
	}
	s := &sshd{dir: set.Dir, key: set.ClientKey}
	if s.daemon, err = b.startDaemon(b.path.B, "sshd", set.Log, sshdPath, "-D", "-e", "-f", set.Config); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(b.path.B.Addr.String(), fmt.Sprint(sshPort))
	if err := waitReady(ctx, s.daemon, b.path.B, 10*time.Second, func() error { return benchkit.SSHBanner(addr) }); err != nil {
		return nil, err
	}
	b.logf("sshd on %s", addr)
	return s, nil
}

// sftpCmd is the stock sftp client in the LPO's namespace running one batch
// command against the firm's sshd.
func (b *bench) sftpCmd(ctx context.Context, command string) (*exec.Cmd, error) {
	batch := filepath.Join(b.ssh.dir, "batch")
	if err := os.WriteFile(batch, []byte(command+"\n"), 0o600); err != nil {
		return nil, err
	}
	return b.path.A.Command(ctx, "sftp", "-b", batch, "-i", b.ssh.key, "-P", fmt.Sprint(sshPort),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
		"root@"+b.path.B.Addr.String()), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
