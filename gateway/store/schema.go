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
	`
-- Issue 21: the notification outbox. Triggers write an event in the same
-- transaction as the fact it reports (a transfer ready, quarantined,
-- downloaded or acknowledged; a hold placed or lifted; a four-eyes request
-- made or approved); the core adds others (refusals, expiry warnings) with
-- EnqueueEvent. The notifier routes each event once to its endpoints and
-- records every delivery attempt; after N failures a delivery is parked.
CREATE TABLE outbox_events (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	id      TEXT NOT NULL UNIQUE, -- the event id: webhook-id, idempotency key
	kind    TEXT NOT NULL,
	subject TEXT NOT NULL,        -- transfer id, matter or request id
	payload TEXT NOT NULL,        -- JSON object
	created INTEGER NOT NULL,     -- Unix nanoseconds
	routed  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_events_unrouted ON outbox_events (seq) WHERE routed = 0;
CREATE TABLE outbox_deliveries (
	event_id     TEXT NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
	endpoint     TEXT NOT NULL,              -- "webhook:NAME" or "email"
	target       TEXT NOT NULL DEFAULT '',   -- JSON array of addresses (email)
	state        TEXT NOT NULL DEFAULT 'pending', -- pending, delivered, parked
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_at      INTEGER NOT NULL,           -- Unix nanoseconds
	last_error   TEXT NOT NULL DEFAULT '',
	delivered_at INTEGER,
	PRIMARY KEY (event_id, endpoint)
);
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (next_at) WHERE state = 'pending';
CREATE TRIGGER outbox_transfer_ready AFTER UPDATE OF state ON transfers
WHEN NEW.state = 'ready' AND OLD.state <> 'ready'
BEGIN
	INSERT INTO outbox_events (id, kind, subject, payload, created) VALUES (
		lower(hex(randomblob(16))), 'transfer.ready', NEW.id,
		json_object('transfer_id', NEW.id, 'sender', NEW.sender, 'matter', NEW.matter,
			'recipients', json((SELECT json_group_array(recipient) FROM
				(SELECT recipient FROM recipients WHERE transfer_id = NEW.id ORDER BY pos))),
			'expires_at', NEW.expires_at, 'decision_id', NEW.decision_id),
		CAST(unixepoch('subsec') * 1000000000 AS INTEGER));
END;
CREATE TRIGGER outbox_transfer_quarantined AFTER UPDATE OF state ON transfers
WHEN NEW.state = 'quarantined' AND OLD.state <> 'quarantined'
BEGIN
	INSERT INTO outbox_events (id, kind, subject, payload, created) VALUES (
		lower(hex(randomblob(16))), 'risk.alert', NEW.id,
		json_object('transfer_id', NEW.id, 'sender', NEW.sender, 'matter', NEW.matter,
			'recipients', json((SELECT json_group_array(recipient) FROM
				(SELECT recipient FROM recipients WHERE transfer_id = NEW.id ORDER BY pos))),
			'reasons', json_array(json_object('code', 'transfer.quarantined',
				'message', 'the ciphertext did not match its signed hash: the transfer was quarantined and its bytes deleted'))),
		CAST(unixepoch('subsec') * 1000000000 AS INTEGER));
END;
CREATE TRIGGER outbox_transfer_acknowledged AFTER UPDATE OF acked ON recipients
WHEN OLD.acked IS NULL AND NEW.acked IS NOT NULL
BEGIN
	INSERT INTO outbox_events (id, kind, subject, payload, created)
	SELECT lower(hex(randomblob(16))), 'transfer.acknowledged', t.id,
		json_object('transfer_id', t.id, 'sender', t.sender, 'matter', t.matter,
			'recipients', json_array(NEW.recipient), 'decision_id', t.decision_id),
		CAST(unixepoch('subsec') * 1000000000 AS INTEGER)
	FROM transfers t WHERE t.id = NEW.transfer_id;
END;
CREATE TRIGGER outbox_transfer_received AFTER UPDATE OF downloads ON recipients
WHEN OLD.downloads = 0 AND NEW.downloads > 0
BEGIN
	INSERT INTO outbox_events (id, kind, subject, payload, created)
	SELECT lower(hex(randomblob(16))), 'transfer.received', t.id,
		json_object('transfer_id', t.id, 'sender', t.sender, 'matter', t.matter,
			'recipients', json_array(NEW.recipient), 'decision_id', t.decision_id),
		CAST(unixepoch('subsec') * 1000000000 AS INTEGER)
	FROM transfers t WHERE t.id = NEW.transfer_id;
END;
CREATE TRIGGER outbox_hold_placed AFTER INSERT ON holds
BEGIN
	INSERT INTO outbox_events (id, kind, subject, payload, created) VALUES (
		lower(hex(randomblob(16))), 'hold.placed', NEW.matter,
		json_object('matter', NEW.matter, 'actor', NEW.placed_by),
		CAST(unixepoch('subsec') * 1000000000 AS INTEGER));
END;
CREATE TRIGGER outbox_hold_lifted AFTER DELETE ON holds
BEGIN
	INSERT INTO outbox_events (id, kind, subject, payload, created) VALUES (
		lower(hex(randomblob(16))), 'hold.lifted', OLD.matter,
		json_object('matter', OLD.matter, 'actor', OLD.placed_by),
		CAST(unixepoch('subsec') * 1000000000 AS INTEGER));
END;
CREATE TRIGGER outbox_approval_requested AFTER INSERT ON matter_requests
BEGIN
	INSERT INTO outbox_events (id, kind, subject, payload, created) VALUES (
		lower(hex(randomblob(16))), 'approval.requested', NEW.id,
		json_object('request_id', NEW.id, 'matter', NEW.matter, 'actor', NEW.requested_by,
			'recipients', json_array(NEW.recipient)),
		CAST(unixepoch('subsec') * 1000000000 AS INTEGER));
END;
CREATE TRIGGER outbox_approval_granted AFTER UPDATE OF approved_by ON matter_requests
WHEN OLD.approved_by IS NULL AND NEW.approved_by IS NOT NULL
BEGIN
	INSERT INTO outbox_events (id, kind, subject, payload, created) VALUES (
		lower(hex(randomblob(16))), 'approval.granted', NEW.id,
		json_object('request_id', NEW.id, 'matter', NEW.matter, 'actor', NEW.approved_by,
			'requested_by', NEW.requested_by, 'recipients', json_array(NEW.recipient)),
		CAST(unixepoch('subsec') * 1000000000 AS INTEGER));
END;
`,
	s3Schema,
	`
-- Issue 19: counters and cursors the replicas of a cluster share.
-- 'revocations' is bumped in the transaction of every revocation and
-- lifting, so a replica learns with one indexed read per request that its
-- deny list is stale; 'siem.audit_next' is the next audit index the SIEM
-- forwarder sends, whichever replica holds its lock.
CREATE TABLE shared_counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
`,
	`
-- The running SHA-256 of an S3 upload (s3_uploads.hash_state: of bytes
-- [0, hashed) as sent in its parts, NULL for none) and the ETag each part
-- was sent with, so that an upload sent in order completes without reading
-- its object back.
ALTER TABLE s3_uploads ADD COLUMN hash_state BLOB;
ALTER TABLE s3_uploads ADD COLUMN hashed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE s3_parts ADD COLUMN etag TEXT;
`,
	`
-- Issue 16: the risk baseline of each identity (gateway/risk), so that it
-- survives a restart and the replicas of a cluster share it. One row per
-- identity, read once per decision and rewritten atomically by every
-- observation (see risk.go).
CREATE TABLE risk_baselines (
	id      TEXT PRIMARY KEY, -- SPIFFE ID
	state   BLOB NOT NULL,    -- the risk package's record (JSON), opaque to the store
	updated INTEGER NOT NULL  -- Unix nanoseconds of the last observation
);
`,
	recentUploadsSchema,
}

// s3Schema is the S3 ciphertext backend's state of uploads in progress (issue
// 19): the multipart upload of each, and its parts holding recorded bytes.
// The same text serves SQLite and PostgreSQL.
const s3Schema = `
CREATE TABLE s3_uploads (
	transfer_id TEXT PRIMARY KEY REFERENCES transfers (id) ON DELETE CASCADE,
	upload_id   TEXT NOT NULL,
	part_size   BIGINT NOT NULL
);
CREATE TABLE s3_parts (
	transfer_id TEXT NOT NULL REFERENCES transfers (id) ON DELETE CASCADE,
	part        BIGINT NOT NULL, -- from 0: bytes [part*part_size, (part+1)*part_size)
	PRIMARY KEY (transfer_id, part)
);
`

// SchemaVersion is the schema version this package writes. A database
// with a newer version is refused by [Open].
const SchemaVersion = 10

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
