package audit

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	tmysql "github.com/transparency-dev/tessera/storage/mysql"
	"github.com/transparency-dev/tessera/storage/posix"
)

// The log's storage driver: tessera's POSIX driver in Config.Dir (the
// embedded default, one gateway process), or tessera's MySQL driver
// (MySQL or MariaDB), one log that every replica of a cluster appends to.
//
// Several writers: tessera's MySQL driver sequences each batch in one
// transaction that reads the tree state with SELECT … FOR UPDATE and
// integrates the batch before commit, so appenders on several replicas are
// serialized by the database's row lock and never assign one index twice;
// TestMySQLSeveralWriters appends from two logs at once and verifies the
// result. Checkpoints are published the same way (the Checkpoint row is read
// FOR UPDATE), signed by whichever replica publishes: every replica must
// share one signing key (key_file), so clients see one log.

// MySQLConfig puts the log in a MySQL or MariaDB database, shared by every
// replica. The zero value keeps the log in Dir.
type MySQLConfig struct {
	// DSN is a go-sql-driver/mysql data source name, for example
	// "lexgate:secret@tcp(db.internal:3306)/lexgate_audit". The tables are
	// created if missing (tessera's schema).
	DSN string `yaml:"dsn"`
}

// mysqlMinCheckpoint is tessera's MySQL driver's shortest checkpoint interval.
const mysqlMinCheckpoint = time.Second

//go:embed mysql_schema.sql
var mysqlSchema string

// openDriver returns the tessera driver cfg names, the database of a shared
// log (nil for the POSIX driver), and a function that releases them.
func openDriver(ctx context.Context, cfg Config) (tessera.Driver, *sql.DB, func(), error) {
	if cfg.MySQL.DSN == "" {
		d, err := posix.New(ctx, posix.Config{Path: cfg.Dir})
		return d, nil, func() {}, err
	}
	mc, err := mysql.ParseDSN(cfg.MySQL.DSN)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("audit: mysql.dsn: %w", err)
	}
	if err := applySchema(ctx, *mc); err != nil {
		return nil, nil, nil, err
	}
	db, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("audit: mysql: %w", err)
	}
	d, err := tmysql.New(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, nil, fmt.Errorf("audit: mysql: %w", err)
	}
	return d, db, func() { db.Close() }, nil
}

// bodiesSchema keeps private entries' bodies beside a shared log, so that
// every replica can open every replica's private entries.
const bodiesSchema = `CREATE TABLE IF NOT EXISTS lexgate_bodies (
  commitment VARBINARY(32) NOT NULL PRIMARY KEY,
  salt       VARBINARY(255) NOT NULL,
  body       MEDIUMBLOB NOT NULL
)`

// putDB writes a batch of bodies with one INSERT: one transaction, one
// commit for the batch.
func (s *bodyStore) putDB(ctx context.Context, batch []*bodyReq) error {
	q := `INSERT IGNORE INTO lexgate_bodies (commitment, salt, body) VALUES (?, ?, ?)` + strings.Repeat(`, (?, ?, ?)`, len(batch)-1)
	args := make([]any, 0, 3*len(batch))
	for _, r := range batch {
		args = append(args, r.c, r.salt, r.body)
	}
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("audit: write private entries' bodies to the MySQL database: %w", err)
	}
	return nil
}

func (s *bodyStore) getDB(c []byte) (salt, body []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = s.db.QueryRowContext(ctx, `SELECT salt, body FROM lexgate_bodies WHERE commitment = ?`, c).Scan(&salt, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("%w: %x", ErrNoBody, c)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("audit: read body: %w", err)
	}
	return salt, body, nil
}

// applySchema creates tessera's tables if they are missing (the statements
// are CREATE TABLE IF NOT EXISTS and INSERT IGNORE: replicas starting
// together may all run them).
func applySchema(ctx context.Context, mc mysql.Config) error {
	mc.MultiStatements = true
	db, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		return fmt.Errorf("audit: mysql: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, mysqlSchema); err != nil {
		return fmt.Errorf("audit: mysql schema: %w", err)
	}
	if _, err := db.ExecContext(ctx, bodiesSchema); err != nil {
		return fmt.Errorf("audit: mysql schema: %w", err)
	}
	return nil
}

// shared reports whether other processes append to the log too.
func (c Config) shared() bool { return c.MySQL.DSN != "" }

// where names the log's storage in messages.
func (c Config) where() string {
	if c.shared() {
		return "the MySQL database"
	}
	return c.Dir
}

// serveReader answers a tlog-tiles request from the log's reader: the path of
// a log kept in a database, served the way the POSIX layout is.
func (l *Log) serveReader(w http.ResponseWriter, r *http.Request, p string) {
	b, err := l.readPath(r.Context(), p)
	switch {
	case errors.Is(err, errBadPath):
		http.NotFound(w, r)
		return
	case err != nil:
		l.cfg.Logger.WarnContext(r.Context(), "audit: serving log", "path", p, "err", err)
		http.NotFound(w, r)
		return
	}
	writeLogFile(w, p, b)
}

var errBadPath = errors.New("not a tlog-tiles path")

func (l *Log) readPath(ctx context.Context, p string) ([]byte, error) {
	if p == "checkpoint" {
		return l.reader.ReadCheckpoint(ctx)
	}
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return nil, errBadPath
	}
	if idx, ok := strings.CutPrefix(rest, "entries/"); ok {
		i, part, err := layout.ParseTileIndexPartial(idx)
		if err != nil {
			return nil, errBadPath
		}
		return l.reader.ReadEntryBundle(ctx, i, part)
	}
	level, idx, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, errBadPath
	}
	lv, i, part, err := layout.ParseTileLevelIndexPartial(level, idx)
	if err != nil {
		return nil, errBadPath
	}
	return l.reader.ReadTile(ctx, lv, i, part)
}

// writeLogFile writes a log file with the headers tlog-tiles clients expect.
func writeLogFile(w http.ResponseWriter, p string, b []byte) {
	if p == "checkpoint" {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		if !strings.Contains(p, ".p/") {
			w.Header().Set("Cache-Control", "max-age=31536000, immutable")
		}
	}
	w.Write(b)
}

// catchUp adds the entries integrated since the last call to the lookup
// index: at Open all of them; later, on a shared log, those other replicas
// appended.
func (l *Log) catchUp(ctx context.Context) error {
	l.catchMu.Lock()
	defer l.catchMu.Unlock()
	size, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return fmt.Errorf("audit: log size: %w", err)
	}
	l.mu.Lock()
	from := l.indexed
	l.mu.Unlock()
	err = walkFrom(ctx, l.reader, from, size, func(i uint64, entry []byte) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.indexEntry(i, entry)
	})
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.indexed = max(l.indexed, size)
	l.mu.Unlock()
	return nil
}

// walkFrom calls fn for the entries [from, size) of a log of size size, in
// order.
func walkFrom(ctx context.Context, r Fetcher, from, size uint64, fn func(index uint64, entry []byte) error) error {
	for b := from / layout.EntryBundleWidth; b*layout.EntryBundleWidth < size; b++ {
		bundle, err := getBundle(ctx, r, b, size)
		if err != nil {
			return err
		}
		first := b * layout.EntryBundleWidth
		want := min(size-first, layout.EntryBundleWidth)
		if uint64(len(bundle.Entries)) < want {
			return fmt.Errorf("audit: entry bundle %d holds %d entries, the log's size needs %d", b, len(bundle.Entries), want)
		}
		for i, e := range bundle.Entries[:want] {
			if first+uint64(i) < from {
				continue
			}
			if err := fn(first+uint64(i), e); err != nil {
				return err
			}
		}
	}
	return nil
}
