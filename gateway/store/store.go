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
// Dir must be set.
type Config struct {
	// Dir is the data directory. The store keeps its metadata in
	// Dir/lexgate.db and ciphertext in Dir/spool/, creating both (0700
	// directories, 0600 files) if they do not exist.
	Dir string `yaml:"dir"`
}

func (c Config) validate() error {
	if c.Dir == "" {
		return invalidf("config: dir is empty")
	}
	return nil
}

// Store keeps transfer metadata in SQLite and ciphertext in a spool
// directory. It is safe for concurrent use. Open one with [Open] and release
// it with [Store.Close].
type Store struct {
	db       *sql.DB
	spool    string
	locks    keyedMutex    // per-transfer: uploads and deletion
	claims   claimSet      // ranges of parallel uploads being written now
	writer   chan struct{} // one writing transaction at a time
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
	spool := filepath.Join(cfg.Dir, "spool")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	dbPath := filepath.Join(cfg.Dir, "lexgate.db")
	if err := createPrivate(dbPath); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(dbPath))
	if err != nil {
		return nil, fmt.Errorf("store: open database: %w", err)
	}
	s := &Store{db: db, spool: spool, writer: make(chan struct{}, 1)}
	if err := s.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: open database: %w", err)
	}
	if err := migrate(ctx, s.db); err != nil {
		return err
	}
	return s.recoverSpool(ctx)
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

// write runs fn in a writing (BEGIN IMMEDIATE) transaction. Writers queue
// here rather than in SQLite's busy handler, which polls with sleeps.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
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
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
