package engines

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Postgres is a private PostgreSQL cluster: its own data directory, socket
// directory and loopback port, run by a non-root user.
type Postgres struct {
	bin  string // directory of initdb, pg_ctl, postgres
	dir  string // the cluster's directory: data/, sock/, log
	port int
	cred *syscall.Credential // nil: run as ourselves
	// settings are the server settings given by [Settings].
	settings []string
	n        atomic.Int64
}

// PostgresBin finds the directory holding initdb and pg_ctl: $PG_BIN, the
// newest /usr/lib/postgresql/*/bin, or $PATH.
func PostgresBin() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("pg_ctl")
	if err != nil {
		return "", errors.New("no PostgreSQL server programs (pg_ctl, initdb) found: install the postgresql package or set PG_BIN")
	}
	return filepath.Dir(p), nil
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres initialises and starts a cluster in a new temporary
// directory. As root it runs the server as the "postgres" user (PostgreSQL
// refuses to run as root). [Settings] adds server settings, [InDir] says
// where the directory goes. Stop it with [Postgres.Stop].
func StartPostgres(ctx context.Context, opts ...Option) (*Postgres, error) {
	o := collect(opts)
	bin, err := PostgresBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.parent, "lexgate-pg-")
	if err != nil {
		return nil, fmt.Errorf("engines: %w", err)
	}
	p := &Postgres{bin: bin, dir: dir, settings: o.settings}
	if os.Geteuid() == 0 {
		if p.cred, err = credential("postgres"); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("engines: %w", err)
		}
	}
	if err := p.init(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

func (p *Postgres) run(ctx context.Context, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, prog), args...)
	cmd.Dir = p.dir
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("engines: %s %v: %w\n%s", prog, args, err, out)
	}
	return nil
}

func (p *Postgres) init(ctx context.Context) error {
	if err := os.Mkdir(filepath.Join(p.dir, "sock"), 0o700); err != nil {
		return fmt.Errorf("engines: %w", err)
	}
	if p.cred != nil {
		os.Chown(filepath.Join(p.dir, "sock"), int(p.cred.Uid), int(p.cred.Gid))
	}
	return p.run(ctx, "initdb", "-D", filepath.Join(p.dir, "data"), "-U", "lexgate",
		"--auth=trust", "--locale=C", "-E", "UTF8", "--no-sync")
}

// Start starts the server (again, after [Postgres.StopServer]) on the same
// port when it has one, else on a free one, and waits until it accepts
// connections.
func (p *Postgres) Start(ctx context.Context) error {
	if p.port == 0 {
		port, err := FreePort()
		if err != nil {
			return err
		}
		p.port = port
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
		p.port, filepath.Join(p.dir, "sock"))
	for _, s := range p.settings {
		opts += " -c " + s
	}
	return p.run(ctx, "pg_ctl", "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "log"),
		"-o", opts, "-w", "start")
}

// StopServer stops the server fast (connections are cut), keeping its data.
func (p *Postgres) StopServer(ctx context.Context) error {
	return p.run(ctx, "pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "fast", "-w", "stop")
}

// Stop stops the server and removes its directory.
func (p *Postgres) Stop() error {
	err := p.StopServer(context.Background())
	if rerr := os.RemoveAll(p.dir); err == nil {
		err = rerr
	}
	return err
}

// Port is the server's loopback TCP port.
func (p *Postgres) Port() int { return p.port }

// DSN returns the connection URL of database db.
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://lexgate@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// NewDatabase creates an empty database with a fresh name and returns its
// DSN.
func (p *Postgres) NewDatabase(ctx context.Context) (string, error) {
	return newDatabase(ctx, "pgx", p.DSN("postgres"), p.DSN, &p.n)
}
