package engines

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql" // database/sql driver "mysql"
)

// MariaDB is a private MariaDB server: its own data directory and socket, a
// loopback port, no grant tables (any local client is let in: for tests).
type MariaDB struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan error
	n    atomic.Int64
}

// MariaDBBin finds mariadbd and mariadb-install-db, or says how to install
// them.
func MariaDBBin() (server, install string, err error) {
	for _, p := range []string{"/usr/sbin/mariadbd", "mariadbd"} {
		if server, err = exec.LookPath(p); err == nil {
			break
		}
	}
	if err != nil {
		return "", "", errors.New("mariadbd not found: install the mariadb-server package")
	}
	if install, err = exec.LookPath("mariadb-install-db"); err != nil {
		return "", "", errors.New("mariadb-install-db not found: install the mariadb-server package")
	}
	return server, install, nil
}

// StartMariaDB initialises and starts a server in a new temporary directory
// ([InDir] says where it goes) and waits until it accepts connections. As
// root the server runs as the "mysql" user. Stop it with [MariaDB.Stop].
func StartMariaDB(ctx context.Context, opts ...Option) (*MariaDB, error) {
	o := collect(opts)
	server, install, err := MariaDBBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.parent, "lexgate-mariadb-")
	if err != nil {
		return nil, fmt.Errorf("engines: %w", err)
	}
	m := &MariaDB{dir: dir}
	user := []string{}
	if os.Geteuid() == 0 {
		cred, err := credential("mysql")
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("engines: %w", err)
		}
		user = []string{"--user=mysql"}
	}
	data := filepath.Join(dir, "data")
	out, err := exec.CommandContext(ctx, install, append([]string{"--no-defaults", "--datadir=" + data,
		"--skip-test-db", "--auth-root-authentication-method=normal"}, append(user, mariaDBOptions(o.settings)...)...)...).CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("engines: mariadb-install-db: %w\n%s", err, out)
	}
	if m.port, err = FreePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("engines: %w", err)
	}
	defer log.Close()
	m.cmd = exec.Command(server, append([]string{"--no-defaults", "--datadir=" + data,
		"--port=" + strconv.Itoa(m.port), "--bind-address=127.0.0.1", "--socket=" + filepath.Join(dir, "sock"),
		"--skip-grant-tables", "--innodb-flush-log-at-trx-commit=2"}, append(user, mariaDBOptions(o.settings)...)...)...)
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("engines: mariadbd: %w", err)
	}
	m.done = make(chan error, 1)
	go func() { m.done <- m.cmd.Wait() }()
	if err := m.ready(ctx); err != nil {
		m.Stop()
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		return nil, fmt.Errorf("%w\n%s", err, b)
	}
	return m, nil
}

// Pause stops the server's process (SIGSTOP) without ending it: every
// query waits, as on a server that stalls. Resume lets it go on.
func (m *MariaDB) Pause() error { return m.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (m *MariaDB) Resume() error { return m.cmd.Process.Signal(syscall.SIGCONT) }

// mariaDBOptions turns settings ("name=value") into mariadbd options.
func mariaDBOptions(settings []string) []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = "--" + s
	}
	return out
}

// ready waits until the server accepts connections, it exits, or 60 s pass.
func (m *MariaDB) ready(ctx context.Context) error {
	db, err := sql.Open("mysql", m.DSN(""))
	if err != nil {
		return fmt.Errorf("engines: %w", err)
	}
	defer db.Close()
	return waitReady(ctx, "mariadbd", m.done, func() error { return db.PingContext(ctx) })
}

// DSN returns the go-sql-driver/mysql DSN of database db ("" for none).
func (m *MariaDB) DSN(db string) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s", m.port, db)
}

// Port is the server's loopback TCP port.
func (m *MariaDB) Port() int { return m.port }

// NewDatabase creates an empty database with a fresh name and returns its DSN.
func (m *MariaDB) NewDatabase(ctx context.Context) (string, error) {
	return newDatabase(ctx, "mysql", m.DSN(""), m.DSN, &m.n)
}

// StopServer stops the server (SIGTERM, then SIGKILL after 30 s), keeping
// its directory and log for inspection.
func (m *MariaDB) StopServer() error {
	if m.cmd == nil || m.cmd.Process == nil {
		return nil
	}
	var err error
	if !terminate(m.cmd, m.done, 30*time.Second) {
		err = errors.New("engines: mariadbd did not stop within 30s of SIGTERM; killed")
	}
	m.cmd = nil
	return err
}

// Stop stops the server and removes its directory.
func (m *MariaDB) Stop() error {
	err := m.StopServer()
	if rerr := os.RemoveAll(m.dir); rerr != nil {
		return errors.Join(err, fmt.Errorf("engines: %w", rerr))
	}
	return err
}
