package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	lexgate "github.com/lexgate/lexgate/gateway"
)

// gateway is the lexgate process under load.
type gateway struct {
	cmd    *exec.Cmd
	addr   string
	logKey string
	exited chan struct{}
	err    error
}

// gatewayConfig is the config of a lexgate under load: loopback, ports
// chosen by the kernel, the PKI in pki, data in data, purge on
// acknowledgement, no per-address handshake cap that one loopback address
// would hit.
func gatewayConfig(pki, data string) lexgate.Config {
	c := lexgate.DevConfig(pki, data)
	c.ShutdownGrace = 5 * time.Second
	// Every lexload client comes from 127.0.0.1, where 220 users would come
	// from as many addresses: lift the per-address cap on handshakes in
	// flight (default 32).
	c.Limits.MaxPreAuthPerAddr = 1024
	c.Log = lexgate.LogConfig{Level: "info", Format: "json"}
	c.Transfer.PurgeOnAck = true
	return c
}

// startGateway writes c to cfgPath, starts lexgate on it and waits until it
// serves. Its log goes to logPath.
func startGateway(bin string, c lexgate.Config, cfgPath, logPath string) (*gateway, error) {
	b, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	cfg := "# written by lexload\n" + string(b)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	g := &gateway{cmd: exec.Command(bin, "serve", "--config", cfgPath), exited: make(chan struct{})}
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := g.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	ready := make(chan struct{})
	go func() {
		defer logf.Close()
		g.follow(io.TeeReader(stderr, logf), ready)
		g.err = g.cmd.Wait()
		close(g.exited)
	}()
	select {
	case <-ready:
		return g, nil
	case <-g.exited:
		return nil, fmt.Errorf("lexgate exited at start (%v); see %s", g.err, logPath)
	case <-time.After(60 * time.Second):
		g.kill()
		return nil, fmt.Errorf("lexgate did not start in 60s; see %s", logPath)
	}
}

// follow reads the gateway's JSON log for its address and audit log key.
func (g *gateway) follow(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg    string `json:"msg"`
			Addr   string `json:"addr"`
			LogKey string `json:"log_key"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		switch l.Msg {
		case "audit log open":
			g.logKey = l.LogKey
		case "lexgate serving":
			if g.addr == "" {
				g.addr = l.Addr
				close(ready)
			}
		}
	}
	io.Copy(io.Discard, r)
}

func (g *gateway) pid() int { return g.cmd.Process.Pid }

// stop asks for a graceful shutdown and waits, killing after 30s.
func (g *gateway) stop() error {
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
		return g.err
	case <-time.After(30 * time.Second):
		g.kill()
		return fmt.Errorf("lexgate did not stop in 30s")
	}
}

func (g *gateway) kill() {
	g.cmd.Process.Kill()
	<-g.exited
}

// fdCounts are a process's open descriptors, by what they point at.
type fdCounts struct {
	Total, Sockets, Spool, Database, Bodies, Other int
}

// countFDs reads /proc/PID/fd. Spool files are under spoolDir; database
// handles are SQLite's (lexgate.db and its -wal and -shm files, in dataDir);
// body segments are the audit log's files of private entries' bodies
// (dataDir/audit/bodies/seg-*.jsonl), the current one of which the log keeps
// open from its first private entry on.
func countFDs(pid int, dataDir, spoolDir string) (fdCounts, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fdCounts{}, err
	}
	var c fdCounts
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		c.Total++
		switch {
		case strings.HasPrefix(target, "socket:"):
			c.Sockets++
		case strings.HasPrefix(target, spoolDir+"/"):
			c.Spool++
		case strings.HasPrefix(target, filepath.Join(dataDir, "lexgate.db")):
			c.Database++
		case strings.HasPrefix(target, filepath.Join(dataDir, "audit", "bodies", "seg-")):
			c.Bodies++
		default:
			c.Other++
		}
	}
	return c, nil
}

// leaks reports whether after holds descriptors before did not that are not
// SQLite's: sockets of gone clients (when judged), spool files, more than the
// one body segment the audit log writes to, anything else. SQLite's own
// handles follow its connection pool and its deferred closes (it cannot close
// a file another connection holds a lock on), so they are shown but not
// judged; so are the sockets of a replica, whose PostgreSQL and MariaDB pools
// grow under load.
func (after fdCounts) leaks(before fdCounts, sockets bool) bool {
	return (sockets && after.Sockets > before.Sockets) || after.Spool > before.Spool || after.Other > before.Other ||
		after.Bodies > max(before.Bodies, 1)
}

// spoolUse counts the files and bytes in a spool directory.
func spoolUse(spool string) (files int, bytes int64) {
	filepath.WalkDir(spool, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				files++
				bytes += fi.Size()
			}
		}
		return nil
	})
	return files, bytes
}
