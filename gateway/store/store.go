package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Config says where a [Store] keeps its data. The zero value is not usable:
// Dir must be set. With Driver empty it is the embedded default: SQLite and a
// spool directory, owned by one gateway process.
type Config struct {
	// Dir is the data directory. The store keeps its metadata in
	// Dir/lexgate.db (driver sqlite) and ciphertext in Dir/spool/, creating
	// both (0700 directories, 0600 files) if they do not exist. With driver
	// postgres, Dir is shared by every replica (a shared file system) and
	// holds only the spool.
	Dir string `yaml:"dir"`
	// Driver is the metadata engine: "sqlite" (the default) for one process,
	// or "postgres" for several replicas sharing one database.
	Driver string `yaml:"driver"`
	// Postgres configures driver postgres.
	Postgres PostgresConfig `yaml:"postgres"`
	// SpoolDir is where the ciphertext lives (default Dir/spool). Replicas
	// of a cluster on driver postgres share it (a shared file system) while
	// each keeps its own Dir.
	SpoolDir string `yaml:"spool_dir"`
	// Replica names this replica among those sharing a store (driver
	// postgres: required, unique per replica). Its staging files live in
	// Dir/spool/staging/<replica>/, so a replica that starts cleans only its
	// own.
	Replica string `yaml:"replica"`
	// Ciphertext is where the ciphertext lives: "spool" (the default), the
	// spool directory, or "s3", the bucket S3 names, shared by every
	// replica (see docs/scale-out.md).
	Ciphertext string `yaml:"ciphertext"`
	// S3 configures ciphertext s3.
	S3 S3Config `yaml:"s3"`
}

// PostgresConfig is the database of driver postgres.
type PostgresConfig struct {
	// DSN is a libpq connection string or URL, for example
	// "postgres://lexgate@db.internal:5432/lexgate?sslmode=verify-full".
	DSN string `yaml:"dsn"`
}

// Drivers of [Config.Driver].
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

func (c Config) validate() error {
	switch {
	case c.Dir == "":
		return invalidf("config: dir is empty")
	case c.Driver == "" || c.Driver == DriverSQLite:
		if c.Postgres.DSN != "" {
			return invalidf("config: postgres.dsn is set but driver is %q: set driver: postgres", c.Driver)
		}
	case c.Driver == DriverPostgres:
		if c.Postgres.DSN == "" {
			return invalidf("config: driver postgres needs postgres.dsn")
		}
		if !validReplica(c.Replica) {
			return invalidf("config: driver postgres needs replica: a name unique to this replica (letters, digits, '-', '_')")
		}
	default:
		return invalidf("config: unknown driver %q: want sqlite or postgres", c.Driver)
	}
	switch c.Ciphertext {
	case "", CiphertextSpool:
		if c.S3 != (S3Config{}) {
			return invalidf("config: s3 is set but ciphertext is %q: set ciphertext: s3", c.Ciphertext)
		}
	case CiphertextS3:
		return c.S3.validate()
	default:
		return invalidf("config: unknown ciphertext %q: want spool or s3", c.Ciphertext)
	}
	return nil
}

func validReplica(r string) bool {
	if r == "" || len(r) > 64 {
		return false
	}
	for _, c := range r {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// Store keeps transfer metadata in SQLite and ciphertext in a spool
// directory. It is safe for concurrent use. Open one with [Open] and release
// it with [Store.Close].
type Store struct {
	db       *sql.DB
	spool    string
	staging  string
	pg       *pgDialect    // nil: SQLite
	s3       *s3Store      // nil: ciphertext in the spool directory
	locks    keyedMutex    // per-transfer, SQLite: uploads and deletion
	named    keyedMutex    // named locks ([Store.Lock]), SQLite
	claims   claimSet      // ranges of parallel uploads being written now
	writer   chan struct{} // SQLite: one writing transaction at a time
	changed  changes       // wakes Changed's waiters after each write
	closeErr error
	once     sync.Once
}

// Open opens the store in cfg.Dir, creating it if needed, brings the schema
// up to date, and repairs the spool after a crash (see the package
// documentation). Close the store when done.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	spool := cfg.SpoolDir
	if spool == "" {
		spool = filepath.Join(cfg.Dir, "spool")
	}
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{spool: spool, staging: filepath.Join(spool, stagingDir)}
	if cfg.Replica != "" {
		s.staging = filepath.Join(s.staging, cfg.Replica)
	}
	var err error
	if cfg.Ciphertext == CiphertextS3 {
		if s.s3, err = openS3(cfg.S3); err != nil {
			return nil, err
		}
		if err := s.s3.check(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.Driver == DriverPostgres {
		s.pg = &pgDialect{}
		s.db, err = openPostgres(ctx, cfg.Postgres)
	} else {
		s.writer = make(chan struct{}, 1)
		s.db, err = openSQLite(cfg.Dir)
	}
	if err != nil {
		return nil, err
	}
	if err := s.init(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

func openSQLite(dir string) (*sql.DB, error) {
	dbPath := filepath.Join(dir, "lexgate.db")
	if err := createPrivate(dbPath); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(dbPath))
	if err != nil {
		return nil, fmt.Errorf("store: open database: %w", err)
	}
	return db, nil
}

func (s *Store) init(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: open database: %w", err)
	}
	if s.pg != nil {
		err := migratePostgres(ctx, s.db)
		if err != nil {
			return err
		}
	} else if err := migrate(ctx, s.db); err != nil {
		return err
	}
	if err := s.recoverSpool(ctx); err != nil {
		return err
	}
	if s.s3 != nil {
		return s.recoverS3(ctx)
	}
	return nil
}

// createPrivate creates the database file with mode 0600 so that SQLite,
// which gives its -wal and -shm files the database file's mode, never
// creates anything world-readable.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return f.Close()
}

// dsn returns the connection string: WAL for concurrent readers, FULL
// synchronous so a committed offset survives power loss, a busy timeout for
// other processes, foreign keys, and BEGIN IMMEDIATE for writing
// transactions so they never fail upgrading a read lock.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String()
}

// Close closes the database. It is safe to call more than once; later calls
// return the first call's result.
func (s *Store) Close() error {
	s.once.Do(func() {
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
	})
	return s.closeErr
}

// write runs fn in a writing transaction: BEGIN IMMEDIATE on SQLite, where
// writers queue here rather than in SQLite's busy handler, which polls with
// sleeps; SERIALIZABLE on PostgreSQL, retried when the database aborts it
// for a conflict with another replica's transaction, so every transaction
// behaves as if it ran alone, as on SQLite.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.pg != nil {
		err := s.pg.retry(ctx, func() error {
			return s.inTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable}, fn)
		})
		if err == nil {
			// Wakes this process's waiters only: another replica's
			// writes reach them at their poll interval.
			s.changed.signal()
		}
		return err
	}
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("store: %w", ctx.Err())
	}
	defer func() { <-s.writer }()
	if err := s.inTx(ctx, nil, fn); err != nil {
		return err
	}
	s.changed.signal()
	return nil
}

// read runs fn in a read-only transaction, a consistent snapshot.
func (s *Store) read(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.pg != nil {
		return s.pg.retry(ctx, func() error {
			return s.inTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, fn)
		})
	}
	return s.inTx(ctx, &sql.TxOptions{ReadOnly: true}, fn)
}

func (s *Store) inTx(ctx context.Context, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// isConstraint reports whether err is a UNIQUE or PRIMARY KEY violation.
func isConstraint(err error) bool {
	if isPgUnique(err) {
		return true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
