package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// The PostgreSQL driver. It runs the same statements as the SQLite one,
// through database/sql and pgx; what differs is kept here:
//
//   - placeholders: the store writes "?", PostgreSQL wants "$1"; the
//     lexgate-pgx database/sql driver rewrites them (see [rebind]);
//   - transactions: every writing transaction runs SERIALIZABLE and is retried
//     when PostgreSQL aborts it for a conflict (SQLSTATE 40001, 40P01), so a
//     check-then-update that is atomic on SQLite, whose writers run one at a
//     time, stays atomic when several replicas run it at once;
//   - locks: the per-transfer lock that orders an upload's steps, and the
//     named locks of [Store.Lock], are advisory locks held on a connection of
//     their own, so every replica sees them; no in-process lock is relied on;
//   - the schema, in PostgreSQL's types, with its version in lexgate_schema.

const pgDriverName = "lexgate-pgx"

var registerPg sync.Once

func openPostgres(ctx context.Context, cfg PostgresConfig) (*sql.DB, error) {
	registerPg.Do(func() { sql.Register(pgDriverName, pgDriver{stdlib.GetDefaultDriver()}) })
	db, err := sql.Open(pgDriverName, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	// Every upload in progress holds a connection for its transfer's lock
	// and uses others for its statements: keep enough idle ones that a busy
	// replica does not reconnect for each. The number open is not capped,
	// which could deadlock lock holders waiting for a connection; the
	// server's max_connections bounds it (see docs/scale-out.md).
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// pgDialect is what the Store does differently on PostgreSQL.
type pgDialect struct{}

// maxRetries bounds how often a transaction aborted by a conflict is run
// again before the error is returned.
const maxRetries = 50

// retry runs fn again while it fails with a serialization failure or a
// deadlock, which PostgreSQL reports when another replica's transaction
// conflicted; it waits a short random time between attempts.
func (pgDialect) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !isPgRetryable(err) || attempt == maxRetries {
			return err
		}
		wait := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 20))))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("store: %w (after %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// lock takes the advisory locks (class, hashtext(key)) for keys, in order, on
// one connection reserved until unlock. Waiting honours ctx. If releasing
// fails, the connection is closed, which releases its locks in the server.
func (pgDialect) lock(ctx context.Context, db *sql.DB, class int, keys ...string) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		}
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	held := 0
	release := func() {
		ctx := context.Background()
		for _, k := range keys[:held] {
			if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock(?, hashtext(?))`, class, k); err != nil {
				conn.Raw(func(dc any) error { return dc.(*pgConn).Close() })
				break
			}
		}
		conn.Close()
	}
	for _, k := range keys {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(?, hashtext(?))`, class, k); err != nil {
			// A cancelled wait may leave the lock granted: closing the
			// connection is the one sure release.
			conn.Raw(func(dc any) error { return dc.(*pgConn).Close() })
			conn.Close()
			if cerr := ctx.Err(); cerr != nil {
				err = cerr // the wait ended with ctx, whatever pgx made of it
			}
			return nil, fmt.Errorf("store: lock %s: %w", k, err)
		}
		held++
	}
	return release, nil
}

func isPgRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func isPgUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// migratePostgres brings the schema up to date in one transaction, holding
// an advisory lock so that replicas starting together migrate once.
func migratePostgres(ctx context.Context, db *sql.DB) error {
	if len(pgMigrations) != SchemaVersion {
		return errPgBehind
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(0, hashtext('lexgate-schema'))`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS lexgate_schema (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT version FROM lexgate_schema`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO lexgate_schema (version) VALUES (0)`); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("store: migrate: %w", err)
	}
	if v > len(pgMigrations) {
		return fmt.Errorf("store: database schema version %d is newer than this program's %d", v, len(pgMigrations))
	}
	for i := v; i < len(pgMigrations); i++ {
		if _, err := tx.ExecContext(ctx, pgMigrations[i]); err != nil {
			return fmt.Errorf("store: migrate to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE lexgate_schema SET version = ?`, len(pgMigrations)); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// pgMigrations are [migrations] in PostgreSQL's dialect, version for
// version. Append only, in step with the SQLite list.
var pgMigrations = []string{
	`
CREATE TABLE keys (
	id         TEXT PRIMARY KEY,
	recipients TEXT NOT NULL,
	updated    BIGINT NOT NULL
);
CREATE TABLE transfers (
	id                TEXT COLLATE "C" PRIMARY KEY,
	sender            TEXT NOT NULL,
	matter            TEXT NOT NULL,
	labels            TEXT NOT NULL,
	file_count        BIGINT NOT NULL,
	plaintext_size    BIGINT NOT NULL,
	ciphertext_size   BIGINT NOT NULL,
	ciphertext_sha256 TEXT NOT NULL,
	manifest_hash     TEXT NOT NULL,
	manifest          BYTEA NOT NULL,
	decision_id       TEXT NOT NULL,
	state             TEXT NOT NULL,
	received          BIGINT NOT NULL,
	hash_state        BYTEA,
	created           BIGINT NOT NULL,
	completed         BIGINT,
	UNIQUE (sender, manifest_hash)
);
CREATE INDEX transfers_by_sender ON transfers (sender, created);
CREATE TABLE recipients (
	transfer_id TEXT COLLATE "C" NOT NULL REFERENCES transfers (id) ON DELETE CASCADE,
	pos         BIGINT NOT NULL,
	recipient   TEXT NOT NULL,
	acked       BIGINT,
	PRIMARY KEY (transfer_id, recipient)
);
CREATE INDEX recipients_by_recipient ON recipients (recipient, acked);
`,
	`
CREATE TABLE upload_ranges (
	transfer_id TEXT COLLATE "C" NOT NULL REFERENCES transfers (id) ON DELETE CASCADE,
	lo          BIGINT NOT NULL,
	hi          BIGINT NOT NULL,
	PRIMARY KEY (transfer_id, lo)
);
`,
	`
ALTER TABLE transfers ADD COLUMN retention_days BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transfers ADD COLUMN max_downloads  BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transfers ADD COLUMN expires_at     BIGINT NOT NULL DEFAULT 0;
CREATE INDEX transfers_by_expiry ON transfers (expires_at) WHERE expires_at > 0;
ALTER TABLE recipients ADD COLUMN downloads     BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN last_download BIGINT;
CREATE TABLE holds (
	matter    TEXT PRIMARY KEY,
	placed_by TEXT NOT NULL,
	placed_at BIGINT NOT NULL,
	reason    TEXT NOT NULL
);
CREATE TABLE matter_requests (
	id           TEXT COLLATE "C" PRIMARY KEY,
	matter       TEXT NOT NULL,
	recipient    TEXT NOT NULL,
	requested_by TEXT NOT NULL,
	reason       TEXT NOT NULL,
	created      BIGINT NOT NULL,
	approved_by  TEXT,
	approved_at  BIGINT
);
CREATE INDEX matter_requests_by_matter ON matter_requests (matter, approved_at);
CREATE TABLE destructions (
	transfer_id TEXT COLLATE "C" PRIMARY KEY,
	sender      TEXT NOT NULL,
	recipients  TEXT NOT NULL,
	matter      TEXT NOT NULL,
	destroyed   BIGINT NOT NULL,
	audit_index BIGINT NOT NULL,
	certificate BYTEA NOT NULL
);
`,
	`
CREATE TABLE revocations (
	id         TEXT PRIMARY KEY,
	revoked_by TEXT NOT NULL,
	revoked_at BIGINT NOT NULL,
	reason     TEXT NOT NULL
);
CREATE TABLE admin_quarantines (
	transfer_id    TEXT COLLATE "C" PRIMARY KEY,
	quarantined_by TEXT NOT NULL,
	quarantined_at BIGINT NOT NULL,
	reason         TEXT NOT NULL
);
-- Issue 16: the owner-signed registration of each identity's keys.
CREATE TABLE key_registrations (
	id           TEXT PRIMARY KEY,
	registration BYTEA NOT NULL
);
`,
	`
-- Issue 21: the notification outbox, as in the SQLite migration: the same
-- tables, and its eight triggers as PL/pgSQL trigger functions that write
-- the same events (kind, subject and JSON payload) in the transaction of
-- the fact they report.
CREATE TABLE outbox_events (
	seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id      TEXT COLLATE "C" NOT NULL UNIQUE,
	kind    TEXT NOT NULL,
	subject TEXT NOT NULL,
	payload TEXT NOT NULL,
	created BIGINT NOT NULL,
	routed  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_events_unrouted ON outbox_events (seq) WHERE routed = 0;
CREATE TABLE outbox_deliveries (
	event_id     TEXT COLLATE "C" NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
	endpoint     TEXT NOT NULL,
	target       TEXT NOT NULL DEFAULT '',
	state        TEXT NOT NULL DEFAULT 'pending',
	attempts     BIGINT NOT NULL DEFAULT 0,
	next_at      BIGINT NOT NULL,
	last_error   TEXT NOT NULL DEFAULT '',
	delivered_at BIGINT,
	PRIMARY KEY (event_id, endpoint)
);
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (next_at) WHERE state = 'pending';
-- lexgate_outbox_add queues one event: a random 32-hex-digit id (as
-- SQLite's lower(hex(randomblob(16)))) and the time in Unix nanoseconds.
CREATE FUNCTION lexgate_outbox_add(k TEXT, subj TEXT, body JSON) RETURNS VOID
LANGUAGE sql AS $$
	INSERT INTO outbox_events (id, kind, subject, payload, created) VALUES (
		replace(gen_random_uuid()::text, '-', ''), k, subj, body::text,
		(extract(epoch FROM clock_timestamp()) * 1000000000)::BIGINT);
$$;
CREATE FUNCTION lexgate_outbox_recipients(tid TEXT) RETURNS JSON
LANGUAGE sql STABLE AS $$
	SELECT coalesce(json_agg(recipient ORDER BY pos), '[]'::json) FROM recipients WHERE transfer_id = tid;
$$;
CREATE FUNCTION outbox_transfer_ready() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lexgate_outbox_add('transfer.ready', NEW.id,
		json_build_object('transfer_id', NEW.id, 'sender', NEW.sender, 'matter', NEW.matter,
			'recipients', lexgate_outbox_recipients(NEW.id),
			'expires_at', NEW.expires_at, 'decision_id', NEW.decision_id));
	RETURN NULL;
END $$;
CREATE TRIGGER outbox_transfer_ready AFTER UPDATE OF state ON transfers FOR EACH ROW
WHEN (NEW.state = 'ready' AND OLD.state <> 'ready') EXECUTE FUNCTION outbox_transfer_ready();
CREATE FUNCTION outbox_transfer_quarantined() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lexgate_outbox_add('risk.alert', NEW.id,
		json_build_object('transfer_id', NEW.id, 'sender', NEW.sender, 'matter', NEW.matter,
			'recipients', lexgate_outbox_recipients(NEW.id),
			'reasons', json_build_array(json_build_object('code', 'transfer.quarantined',
				'message', 'the ciphertext did not match its signed hash: the transfer was quarantined and its bytes deleted'))));
	RETURN NULL;
END $$;
CREATE TRIGGER outbox_transfer_quarantined AFTER UPDATE OF state ON transfers FOR EACH ROW
WHEN (NEW.state = 'quarantined' AND OLD.state <> 'quarantined') EXECUTE FUNCTION outbox_transfer_quarantined();
-- outbox_recipient_event is transfer.acknowledged and transfer.received:
-- TG_ARGV[0] is the kind.
CREATE FUNCTION outbox_recipient_event() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
	t transfers%ROWTYPE;
BEGIN
	SELECT * INTO t FROM transfers WHERE id = NEW.transfer_id;
	IF FOUND THEN
		PERFORM lexgate_outbox_add(TG_ARGV[0], t.id,
			json_build_object('transfer_id', t.id, 'sender', t.sender, 'matter', t.matter,
				'recipients', json_build_array(NEW.recipient), 'decision_id', t.decision_id));
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER outbox_transfer_acknowledged AFTER UPDATE OF acked ON recipients FOR EACH ROW
WHEN (OLD.acked IS NULL AND NEW.acked IS NOT NULL) EXECUTE FUNCTION outbox_recipient_event('transfer.acknowledged');
CREATE TRIGGER outbox_transfer_received AFTER UPDATE OF downloads ON recipients FOR EACH ROW
WHEN (OLD.downloads = 0 AND NEW.downloads > 0) EXECUTE FUNCTION outbox_recipient_event('transfer.received');
CREATE FUNCTION outbox_hold_placed() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lexgate_outbox_add('hold.placed', NEW.matter,
		json_build_object('matter', NEW.matter, 'actor', NEW.placed_by));
	RETURN NULL;
END $$;
CREATE TRIGGER outbox_hold_placed AFTER INSERT ON holds FOR EACH ROW EXECUTE FUNCTION outbox_hold_placed();
CREATE FUNCTION outbox_hold_lifted() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lexgate_outbox_add('hold.lifted', OLD.matter,
		json_build_object('matter', OLD.matter, 'actor', OLD.placed_by));
	RETURN NULL;
END $$;
CREATE TRIGGER outbox_hold_lifted AFTER DELETE ON holds FOR EACH ROW EXECUTE FUNCTION outbox_hold_lifted();
CREATE FUNCTION outbox_approval_requested() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lexgate_outbox_add('approval.requested', NEW.id,
		json_build_object('request_id', NEW.id, 'matter', NEW.matter, 'actor', NEW.requested_by,
			'recipients', json_build_array(NEW.recipient)));
	RETURN NULL;
END $$;
CREATE TRIGGER outbox_approval_requested AFTER INSERT ON matter_requests FOR EACH ROW
EXECUTE FUNCTION outbox_approval_requested();
CREATE FUNCTION outbox_approval_granted() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
	PERFORM lexgate_outbox_add('approval.granted', NEW.id,
		json_build_object('request_id', NEW.id, 'matter', NEW.matter, 'actor', NEW.approved_by,
			'requested_by', NEW.requested_by, 'recipients', json_build_array(NEW.recipient)));
	RETURN NULL;
END $$;
CREATE TRIGGER outbox_approval_granted AFTER UPDATE OF approved_by ON matter_requests FOR EACH ROW
WHEN (OLD.approved_by IS NULL AND NEW.approved_by IS NOT NULL) EXECUTE FUNCTION outbox_approval_granted();
`,
	s3Schema,
	`
-- Issue 19: the shared counters, as in the SQLite migration.
CREATE TABLE shared_counters (
	name  TEXT COLLATE "C" PRIMARY KEY,
	value BIGINT NOT NULL
);
`,
	`
-- The running SHA-256 of an S3 upload and its parts' ETags, as in the
-- SQLite migration.
ALTER TABLE s3_uploads ADD COLUMN hash_state BYTEA;
ALTER TABLE s3_uploads ADD COLUMN hashed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE s3_parts ADD COLUMN etag TEXT;
`,
	`
-- Issue 16: the risk baselines, as in the SQLite migration.
CREATE TABLE risk_baselines (
	id      TEXT COLLATE "C" PRIMARY KEY,
	state   BYTEA NOT NULL,
	updated BIGINT NOT NULL
);
`,
	recentUploadsSchema,
}

// errPgBehind means a migration was added to the SQLite list without its
// PostgreSQL twin: the postgres driver refuses to open rather than run on a
// schema that lacks tables the code uses. TestPostgresSchemaInStep fails too.
var errPgBehind = fmt.Errorf("store: the postgres driver's schema stops at version %d, the store's is at %d: add the missing PostgreSQL migrations (postgres.go)", len(pgMigrations), SchemaVersion)

// rebind turns the store's "?" placeholders into PostgreSQL's "$1", "$2", …
// outside quoted strings and identifiers.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	var quote rune
	for _, c := range q {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// pgDriver is pgx's database/sql driver with [rebind] applied to every
// statement.
type pgDriver struct{ d driver.Driver }

func (p pgDriver) Open(name string) (driver.Conn, error) {
	c, err := p.d.Open(name)
	if err != nil {
		return nil, err
	}
	return &pgConn{c.(*stdlib.Conn)}, nil
}

// pgConn forwards to pgx's connection, rebinding statements.
type pgConn struct{ c *stdlib.Conn }

var (
	_ driver.ConnBeginTx        = (*pgConn)(nil)
	_ driver.ConnPrepareContext = (*pgConn)(nil)
	_ driver.ExecerContext      = (*pgConn)(nil)
	_ driver.QueryerContext     = (*pgConn)(nil)
	_ driver.Pinger             = (*pgConn)(nil)
	_ driver.SessionResetter    = (*pgConn)(nil)
	_ driver.Validator          = (*pgConn)(nil)
)

func (c *pgConn) Prepare(q string) (driver.Stmt, error) { return c.c.Prepare(rebind(q)) }
func (c *pgConn) Close() error                          { return c.c.Close() }
func (c *pgConn) Begin() (driver.Tx, error) {
	return c.c.BeginTx(context.Background(), driver.TxOptions{})
}
func (c *pgConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	return c.c.BeginTx(ctx, o)
}
func (c *pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.c.PrepareContext(ctx, rebind(q))
}
func (c *pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.c.ExecContext(ctx, rebind(q), args)
}
func (c *pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.c.QueryContext(ctx, rebind(q), args)
}
func (c *pgConn) Ping(ctx context.Context) error         { return c.c.Ping(ctx) }
func (c *pgConn) ResetSession(ctx context.Context) error { return c.c.ResetSession(ctx) }
func (c *pgConn) IsValid() bool                          { return !c.c.Conn().IsClosed() }
