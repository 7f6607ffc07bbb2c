package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// The engines a cluster runs on, started privately in the demo's directory
// on loopback ports: PostgreSQL for metadata, MariaDB for the audit log,
// versitygw (S3) for the ciphertext.
// (gateway/internal/enginetest does the same for tests.)

// asUser returns the credential of a system user to run a server as when we
// are root (the servers refuse to run as root), or nil.
func asUser(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root needs the %q user: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func pgBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server programs not found: make deb-deps installs postgresql")
}

type postgres struct {
	bin, dir string
	port     int
	cred     *syscall.Credential
}

func (d *demo) startPostgres(ctx context.Context) (*postgres, error) {
	bin, err := pgBin()
	if err != nil {
		return nil, err
	}
	p := &postgres{bin: bin, dir: d.path("postgres")}
	if p.cred, err = asUser("postgres"); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(p.dir, "sock"), 0o700); err != nil {
		return nil, err
	}
	if p.cred != nil {
		for _, x := range []string{p.dir, filepath.Join(p.dir, "sock")} {
			os.Chown(x, int(p.cred.Uid), int(p.cred.Gid))
		}
	}
	if p.port, err = freePort(); err != nil {
		return nil, err
	}
	if err := p.run(ctx, "initdb", "-D", filepath.Join(p.dir, "data"), "-U", "lexgate", "--auth=trust",
		"--locale=C", "-E", "UTF8"); err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300", p.port, filepath.Join(p.dir, "sock"))
	if err := p.run(ctx, "pg_ctl", "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "log"), "-o", opts, "-w", "start"); err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", p.dsn("postgres"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE lexgate"); err != nil {
		p.stop()
		return nil, fmt.Errorf("create database: %w", err)
	}
	return p, nil
}

func (p *postgres) dsn(db string) string {
	return fmt.Sprintf("postgres://lexgate@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

func (p *postgres) run(ctx context.Context, prog string, args ...string) error {
	c := exec.CommandContext(ctx, filepath.Join(p.bin, prog), args...)
	c.Dir = p.dir
	if p.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", prog, err, out)
	}
	return nil
}

func (p *postgres) stop() error {
	return p.run(context.Background(), "pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "fast", "-w", "stop")
}

type mariadb struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan error
}

func (d *demo) startMariaDB(ctx context.Context) (*mariadb, error) {
	server, err := exec.LookPath("/usr/sbin/mariadbd")
	if err != nil {
		return nil, errors.New("mariadbd not found: make deb-deps installs mariadb-server")
	}
	m := &mariadb{dir: d.path("mariadb")}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return nil, err
	}
	var userArg []string
	if cred, err := asUser("mysql"); err != nil {
		return nil, err
	} else if cred != nil {
		os.Chown(m.dir, int(cred.Uid), int(cred.Gid))
		userArg = []string{"--user=mysql"}
	}
	data := filepath.Join(m.dir, "data")
	if out, err := exec.CommandContext(ctx, "mariadb-install-db", append([]string{"--no-defaults", "--datadir=" + data,
		"--skip-test-db", "--auth-root-authentication-method=normal"}, userArg...)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	if m.port, err = freePort(); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(m.dir, "log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	m.cmd = exec.Command(server, append([]string{"--no-defaults", "--datadir=" + data, "--port=" + strconv.Itoa(m.port),
		"--bind-address=127.0.0.1", "--socket=" + filepath.Join(m.dir, "sock"), "--skip-grant-tables"}, userArg...)...)
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	m.done = make(chan error, 1)
	go func() { m.done <- m.cmd.Wait() }()
	db, err := sql.Open("mysql", m.dsn(""))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for db.PingContext(ctx) != nil {
		select {
		case err := <-m.done:
			m.done <- err
			return nil, fmt.Errorf("mariadbd exited: %v (log: %s)", err, filepath.Join(m.dir, "log"))
		case <-ctx.Done():
			m.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, errors.New("mariadbd not ready within 60s")
		}
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE lexgate_audit"); err != nil {
		m.stop()
		return nil, fmt.Errorf("create database: %w", err)
	}
	return m, nil
}

func (m *mariadb) dsn(db string) string { return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s", m.port, db) }

func (m *mariadb) stop() error {
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
		return nil
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
		return errors.New("mariadbd did not stop within 30s of SIGTERM")
	}
}

func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

// versitygw is the S3-compatible server holding the ciphertext: versitygw's
// POSIX backend over a directory of the demo, with root credentials of its own.
type versitygw struct {
	dir, bucket    string
	port           int
	access, secret string
	secretFile     string
	cmd            *exec.Cmd
	done           chan error
}

// versityGWBin returns the versitygw binary: the -versitygw flag, else the
// one make tools-heavy builds into $LEXGATE_TOOLS_DIR.
func versityGWBin(flagPath string) (string, error) {
	p := flagPath
	if p == "" {
		root := os.Getenv("LEXGATE_TOOLS_DIR")
		if root == "" {
			base, err := os.UserCacheDir()
			if err != nil {
				return "", err
			}
			root = filepath.Join(base, "lexgate-tools")
		}
		p = filepath.Join(root, "versitygw-v1.8.0", "versitygw")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("versitygw not found at %s: make versitygw builds it", p)
	}
	return p, nil
}

func (d *demo) startVersityGW(ctx context.Context, bin string) (*versitygw, error) {
	v := &versitygw{dir: d.path("s3"), bucket: "lexgate-ciphertext", access: "lexgate-demo"}
	secret := make([]byte, 20)
	rand.Read(secret)
	v.secret = hex.EncodeToString(secret)
	if err := os.MkdirAll(filepath.Join(v.dir, "data", v.bucket), 0o700); err != nil {
		return nil, err
	}
	v.secretFile = filepath.Join(v.dir, "secret")
	if err := os.WriteFile(v.secretFile, []byte(v.secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	var err error
	if v.port, err = freePort(); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(v.dir, "log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	v.cmd = exec.Command(bin, "--port", v.addr(), "posix", filepath.Join(v.dir, "data"))
	v.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+v.access, "ROOT_SECRET_KEY="+v.secret)
	v.cmd.Stdout, v.cmd.Stderr = log, log
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		return nil, err
	}
	v.done = make(chan error, 1)
	go func() { v.done <- v.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(v.endpoint())
		if err == nil {
			resp.Body.Close()
			return v, nil
		}
		select {
		case err := <-v.done:
			v.done <- err
			return nil, fmt.Errorf("versitygw exited: %v (log: %s)", err, filepath.Join(v.dir, "log"))
		case <-ctx.Done():
			v.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			v.stop()
			return nil, errors.New("versitygw not ready within 60s")
		}
	}
}

func (v *versitygw) addr() string     { return fmt.Sprintf("127.0.0.1:%d", v.port) }
func (v *versitygw) endpoint() string { return "http://" + v.addr() }

func (v *versitygw) stop() error {
	v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.done:
		return nil
	case <-time.After(30 * time.Second):
		v.cmd.Process.Kill()
		<-v.done
		return errors.New("versitygw did not stop within 30s of SIGTERM")
	}
}
