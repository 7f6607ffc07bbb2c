// Package engines starts and stops the real engines that lexgate's cluster
// backends run on — a private PostgreSQL cluster (metadata), a private
// MariaDB server (the audit log) and a private versitygw S3 server (the
// ciphertext) — for tests, lexload and the cluster demo: each in a
// directory of its own, on a loopback port chosen at run time, stopped by
// the caller. Nothing is faked: a test talks to the same engine a
// production replica does.
//
// It is the one copy of this code: gateway/internal/enginetest wraps it for
// tests (skip, or fail under CI=true, when a program is missing; stop at
// the test's end), and cmd/lexload and cmd/lexcluster call it directly.
//
// As root, PostgreSQL and MariaDB run as the "postgres" and "mysql" users
// (they refuse to run as root), so the directories above an engine's
// directory must be searchable by them.
package engines

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"os/user"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// An Option changes how an engine is started. Options that do not apply to
// an engine are ignored by it.
type Option func(*options)

type options struct {
	parent   string   // where the engine's directory is made; "" = os.TempDir
	settings []string // PostgreSQL server settings
	bin      string   // versitygw binary
}

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// InDir makes the engine's directory (data, socket, log) inside parent
// instead of the system's temporary directory, so that it lives with the
// rest of a run's files (the cluster demo keeps them for inspection).
func InDir(parent string) Option { return func(o *options) { o.parent = parent } }

// Settings gives server settings ("name=value") after the defaults, which
// they override: to PostgreSQL (defaults max_connections=200, fsync=off; a
// load run asks for production's fsync=on) and to MariaDB (as --name=value
// options; a disk-full test shrinks its redo log). Other engines ignore it.
func Settings(settings ...string) Option {
	return func(o *options) { o.settings = append(o.settings, settings...) }
}

// Binary names the versitygw binary to run instead of [VersityGWBin]'s.
// Other engines ignore it.
func Binary(path string) Option { return func(o *options) { o.bin = path } }

// credential returns the credential of the system user name that a server
// runs as when we are root.
func credential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("engines: running as root needs the %q user to run its server as: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// FreePort returns a port of 127.0.0.1 free for both TCP and UDP, for a
// server of its own (an engine) or a lexgate, which serves HTTPS and QUIC on
// one port number.
func FreePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("engines: free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("engines: no port of 127.0.0.1 free for both TCP and UDP")
}

// newDatabase creates database t<n> through the admin DSN with the
// database/sql driver and returns its DSN.
func newDatabase(ctx context.Context, driver, admin string, dsn func(db string) string, n *atomic.Int64) (string, error) {
	name := fmt.Sprintf("t%d", n.Add(1))
	db, err := sql.Open(driver, admin)
	if err != nil {
		return "", fmt.Errorf("engines: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("engines: create database %s: %w", name, err)
	}
	return dsn(name), nil
}

// waitReady calls probe until it succeeds, the server what exits (its Wait
// result arrives on done, and is put back), ctx ends, or 60 s pass.
func waitReady(ctx context.Context, what string, done chan error, probe func() error) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := probe()
		if err == nil {
			return nil
		}
		select {
		case werr := <-done:
			done <- werr
			return fmt.Errorf("engines: %s exited: %v", what, werr)
		case <-ctx.Done():
			return fmt.Errorf("engines: %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("engines: %s not ready within 60s: %w", what, err)
		}
	}
}

// terminate stops the process cmd, whose Wait result arrives on done:
// SIGTERM, then SIGKILL after grace. It reports whether the process stopped
// within grace.
func terminate(cmd *exec.Cmd, done <-chan error, grace time.Duration) bool {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return true
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
		return false
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
