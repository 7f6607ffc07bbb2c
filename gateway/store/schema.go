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
}

// SchemaVersion is the schema version this package writes. A database
// with a newer version is refused by [Open].
const SchemaVersion = 2

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
