package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations brings the schema from version i to i+1. The database's
// user_version pragma records how many have run. Append only: never edit
// a migration that has shipped.
var migrations = []string{
	`
CREATE TABLE keys (
	id         TEXT PRIMARY KEY,
	recipients TEXT NOT NULL,    -- JSON array of age recipients
	updated    INTEGER NOT NULL  -- Unix nanoseconds
);
CREATE TABLE transfers (
	id                TEXT PRIMARY KEY,
	sender            TEXT NOT NULL,
	matter            TEXT NOT NULL,
	labels            TEXT NOT NULL,    -- JSON array
	file_count        INTEGER NOT NULL,
	plaintext_size    INTEGER NOT NULL,
	ciphertext_size   INTEGER NOT NULL,
	ciphertext_sha256 TEXT NOT NULL,
	manifest_hash     TEXT NOT NULL,
	manifest          BLOB NOT NULL,
	decision_id       TEXT NOT NULL,
	state             TEXT NOT NULL,
	received          INTEGER NOT NULL, -- durable upload offset
	hash_state        BLOB,             -- marshalled SHA-256 of bytes [0, received)
	created           INTEGER NOT NULL, -- Unix nanoseconds
	completed         INTEGER,          -- Unix nanoseconds, NULL until ready
	UNIQUE (sender, manifest_hash)
);
CREATE INDEX transfers_by_sender ON transfers (sender, created);
CREATE TABLE recipients (
	transfer_id TEXT NOT NULL REFERENCES transfers (id) ON DELETE CASCADE,
	pos         INTEGER NOT NULL,
	recipient   TEXT NOT NULL,
	acked       INTEGER,                -- Unix nanoseconds, NULL until acked
	PRIMARY KEY (transfer_id, recipient)
);
CREATE INDEX recipients_by_recipient ON recipients (recipient, acked);
`,
	`
-- Ranges of a parallel upload held durably beyond the contiguous prefix
-- (transfers.received): disjoint, none touching the prefix or each other.
CREATE TABLE upload_ranges (
	transfer_id TEXT NOT NULL REFERENCES transfers (id) ON DELETE CASCADE,
	lo          INTEGER NOT NULL, -- first byte
	hi          INTEGER NOT NULL, -- one past the last byte
	PRIMARY KEY (transfer_id, lo)
);
`,
	`
-- Issue 14: the obligations of the decision that allowed each transfer,
-- counted downloads, legal holds, four-eyes matter requests, and the
-- destruction certificates of transfers the sweeper deleted.
ALTER TABLE transfers ADD COLUMN retention_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE transfers ADD COLUMN max_downloads  INTEGER NOT NULL DEFAULT 0; -- 0: no limit
ALTER TABLE transfers ADD COLUMN expires_at     INTEGER NOT NULL DEFAULT 0; -- Unix nanoseconds, 0: never
CREATE INDEX transfers_by_expiry ON transfers (expires_at) WHERE expires_at > 0;
ALTER TABLE recipients ADD COLUMN downloads     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN last_download INTEGER;                    -- Unix nanoseconds
CREATE TABLE holds (
	matter    TEXT PRIMARY KEY,
	placed_by TEXT NOT NULL,
	placed_at INTEGER NOT NULL, -- Unix nanoseconds
	reason    TEXT NOT NULL
);
CREATE TABLE matter_requests (
	id           TEXT PRIMARY KEY,
	matter       TEXT NOT NULL,
	recipient    TEXT NOT NULL,
	requested_by TEXT NOT NULL,
	reason       TEXT NOT NULL,
	created      INTEGER NOT NULL,
	approved_by  TEXT,    -- NULL while pending
	approved_at  INTEGER
);
CREATE INDEX matter_requests_by_matter ON matter_requests (matter, approved_at);
CREATE TABLE destructions (
	transfer_id TEXT PRIMARY KEY,
	sender      TEXT NOT NULL,
	recipients  TEXT NOT NULL,   -- JSON array
	matter      TEXT NOT NULL,
	destroyed   INTEGER NOT NULL, -- Unix nanoseconds
	audit_index INTEGER NOT NULL, -- the destruction's audit entry
	certificate BLOB NOT NULL     -- the signed statement, opaque to the store
);
`,
	`
-- Issue 16: run-time revocations of SPIFFE IDs by the admin plane (merged
-- with the config file's identity.revoked at start), transfers an admin
-- quarantined (never delivered until released), and signed key registrations.
CREATE TABLE revocations (
	id         TEXT PRIMARY KEY, -- SPIFFE ID
	revoked_by TEXT NOT NULL,
	revoked_at INTEGER NOT NULL, -- Unix nanoseconds
	reason     TEXT NOT NULL
);
CREATE TABLE admin_quarantines (
	transfer_id    TEXT PRIMARY KEY,
	quarantined_by TEXT NOT NULL,
	quarantined_at INTEGER NOT NULL, -- Unix nanoseconds
	reason         TEXT NOT NULL
);
-- Issue 16: the owner-signed registration of each identity's keys.
CREATE TABLE key_registrations (
	id           TEXT PRIMARY KEY, -- SPIFFE ID, as in keys
	registration BLOB NOT NULL     -- api.SignedRegistration JSON, opaque to the store
);
`,
}

// SchemaVersion is the schema version this package writes. A database
// with a newer version is refused by [Open].
const SchemaVersion = 4

func init() {
	if len(migrations) != SchemaVersion {
		panic("store: SchemaVersion does not match migrations")
	}
}

// migrate runs the migrations the database has not seen, all in one
// transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("store: database schema version %d is newer than this program's %d", v, len(migrations))
	}
	if v == len(migrations) {
		return nil
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("store: migrate to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}
