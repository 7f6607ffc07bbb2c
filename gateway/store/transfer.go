package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// State is the lifecycle state of a transfer's ciphertext.
type State string

// Transfer states. A transfer starts uploading and ends ready or
// quarantined; neither end state changes again.
const (
	// StateUploading: ciphertext is still arriving; nothing is deliverable.
	StateUploading State = "uploading"
	// StateReady: all ciphertext arrived and matched the declared SHA-256.
	StateReady State = "ready"
	// StateQuarantined: the ciphertext did not match its hash. Its bytes
	// are deleted and it is never deliverable; the metadata stays as
	// evidence until [Store.DeleteTransfer].
	StateQuarantined State = "quarantined"
)

// Transfer is the metadata of one transfer: who sent what to whom, and how
// far its ciphertext upload has come.
type Transfer struct {
	ID               string   // random 128-bit, lowercase hex; made by CreateTransfer if empty
	Sender           string   // SPIFFE ID
	Recipients       []string // SPIFFE IDs, in the order given
	Matter           string
	Labels           []string
	FileCount        int
	PlaintextSize    int64
	CiphertextSize   int64
	CiphertextSHA256 string // hex, the expected hash of the ciphertext
	ManifestHash     string // hex SHA-256 of the signed manifest payload, unique per sender
	Manifest         []byte // the signed manifest JSON, opaque to the store
	DecisionID       string
	State            State
	Offset           int64     // ciphertext bytes received and durable
	Created          time.Time // set by CreateTransfer if zero; all times read back in UTC
	Completed        time.Time // zero until ready
	// Acked maps each recipient that acknowledged delivery to when it did.
	Acked map[string]time.Time
	// Obligations are those of the decision that allowed the transfer.
	Obligations Obligations
	// Downloads maps each recipient to its counted downloads (see
	// [Store.CountDownload]); recipients with none are absent.
	Downloads map[string]int
}

// Deliverable reports whether recipient may be offered the transfer: it is
// ready, addressed to recipient, and not yet acknowledged by them.
func (t *Transfer) Deliverable(recipient string) bool {
	if t.State != StateReady {
		return false
	}
	if _, acked := t.Acked[recipient]; acked {
		return false
	}
	for _, r := range t.Recipients {
		if r == recipient {
			return true
		}
	}
	return false
}

// CreateTransfer stores a new transfer in [StateUploading] at offset 0. It
// fills in t.ID if empty, t.Created if zero (with the current time), and
// t.State, t.Offset, t.Completed and t.Acked. It returns [ErrExists] if
// the ID or the pair (Sender, ManifestHash) is already stored; use
// [Store.TransferByManifest] to find that transfer and resume it.
func (s *Store) CreateTransfer(ctx context.Context, t *Transfer) error {
	if err := checkNew(t); err != nil {
		return err
	}
	id := t.ID
	if id == "" {
		id = newID()
	}
	created := t.Created
	if created.IsZero() {
		created = time.Now()
	}
	created = created.UTC() // as it will read back
	hs, err := sha256.New().(interface{ MarshalBinary() ([]byte, error) }).MarshalBinary()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	labels, _ := json.Marshal(nonNil(t.Labels))
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO transfers (id, sender, matter, labels, file_count,
			plaintext_size, ciphertext_size, ciphertext_sha256, manifest_hash, manifest, decision_id,
			state, received, hash_state, created, completed, retention_days, max_downloads, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, NULL, ?, ?, ?)`,
			id, t.Sender, t.Matter, string(labels), t.FileCount, t.PlaintextSize, t.CiphertextSize,
			strings.ToLower(t.CiphertextSHA256), strings.ToLower(t.ManifestHash), nonNilBytes(t.Manifest),
			t.DecisionID, StateUploading, hs, created.UnixNano(),
			t.Obligations.RetentionDays, t.Obligations.MaxDownloads, nanosOrZero(t.Obligations.ExpiresAt))
		if isConstraint(err) {
			return fmt.Errorf("%w: transfer %s or manifest %s from %s", ErrExists, id, t.ManifestHash, t.Sender)
		}
		if err != nil {
			return fmt.Errorf("store: create transfer: %w", err)
		}
		for i, r := range t.Recipients {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recipients (transfer_id, pos, recipient) VALUES (?, ?, ?)`,
				id, i, r); err != nil {
				return fmt.Errorf("store: create transfer: recipient %s: %w", r, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	t.ID, t.Created = id, created
	t.State, t.Offset, t.Completed, t.Acked = StateUploading, 0, time.Time{}, map[string]time.Time{}
	t.Downloads = map[string]int{}
	t.CiphertextSHA256, t.ManifestHash = strings.ToLower(t.CiphertextSHA256), strings.ToLower(t.ManifestHash)
	return nil
}

// checkNew validates a transfer given to CreateTransfer.
func checkNew(t *Transfer) error {
	switch {
	case t.ID != "" && !validID(t.ID):
		return invalidf("transfer id %q: want 1 to 64 lowercase letters or digits", t.ID)
	case t.Sender == "":
		return invalidf("transfer: empty sender")
	case len(t.Recipients) == 0:
		return invalidf("transfer: no recipients")
	case t.CiphertextSize < 0:
		return invalidf("transfer: negative ciphertext size %d", t.CiphertextSize)
	case t.CiphertextSHA256 != "" && !isSHA256Hex(t.CiphertextSHA256):
		return invalidf("transfer: ciphertext hash %q is not hex SHA-256 (or empty, to seal later)", t.CiphertextSHA256)
	case !isSHA256Hex(t.ManifestHash):
		return invalidf("transfer: manifest hash %q is not hex SHA-256", t.ManifestHash)
	}
	seen := make(map[string]bool, len(t.Recipients))
	for _, r := range t.Recipients {
		if r == "" || seen[r] {
			return invalidf("transfer: empty or repeated recipient %q", r)
		}
		seen[r] = true
	}
	return nil
}

// newID returns a random 128-bit ID in lowercase hex.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails; see crypto/rand
	return hex.EncodeToString(b[:])
}

// validID reports whether id is safe as a spool file name.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isSHA256Hex(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Transfer returns the transfer with the given ID, or [ErrNotFound].
func (s *Store) Transfer(ctx context.Context, id string) (*Transfer, error) {
	return s.one(ctx, `WHERE id = ?`, id)
}

// TransferByManifest returns the transfer that sender created for the
// manifest with the given hash, or [ErrNotFound]. A client that lost its
// transfer ID resumes through it.
func (s *Store) TransferByManifest(ctx context.Context, sender, manifestHash string) (*Transfer, error) {
	return s.one(ctx, `WHERE sender = ? AND manifest_hash = ?`, sender, strings.ToLower(manifestHash))
}

// Inbox returns the ready transfers addressed to recipient that recipient
// has not acknowledged, oldest (by creation) first.
func (s *Store) Inbox(ctx context.Context, recipient string) ([]*Transfer, error) {
	return s.list(ctx, `WHERE state = 'ready' AND id IN
		(SELECT transfer_id FROM recipients WHERE recipient = ? AND acked IS NULL)
		ORDER BY created, id`, recipient)
}

// Outbox returns every transfer sender created, in any state, oldest first.
func (s *Store) Outbox(ctx context.Context, sender string) ([]*Transfer, error) {
	return s.list(ctx, `WHERE sender = ? ORDER BY created, id`, sender)
}

func (s *Store) one(ctx context.Context, where string, args ...any) (*Transfer, error) {
	ts, err := s.list(ctx, where, args...)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("%w: transfer %v", ErrNotFound, args)
	}
	return ts[0], nil
}

const transferColumns = `id, sender, matter, labels, file_count, plaintext_size, ciphertext_size,
	ciphertext_sha256, manifest_hash, manifest, decision_id, state, received, created, completed,
	retention_days, max_downloads, expires_at`

// list returns the transfers selected by where, recipients included, from
// one snapshot.
func (s *Store) list(ctx context.Context, where string, args ...any) ([]*Transfer, error) {
	var ts []*Transfer
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		if ts, err = scanTransfers(ctx, tx, where, args); err != nil {
			return err
		}
		for _, t := range ts {
			if err := loadRecipients(ctx, tx, t); err != nil {
				return err
			}
		}
		return nil
	})
	return ts, err
}

func scanTransfers(ctx context.Context, tx *sql.Tx, where string, args []any) ([]*Transfer, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+transferColumns+` FROM transfers `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query transfers: %w", err)
	}
	defer rows.Close()
	var ts []*Transfer
	for rows.Next() {
		t := new(Transfer)
		var labels string
		var created int64
		var completed sql.NullInt64
		var expires int64
		if err := rows.Scan(&t.ID, &t.Sender, &t.Matter, &labels, &t.FileCount, &t.PlaintextSize,
			&t.CiphertextSize, &t.CiphertextSHA256, &t.ManifestHash, &t.Manifest, &t.DecisionID,
			&t.State, &t.Offset, &created, &completed,
			&t.Obligations.RetentionDays, &t.Obligations.MaxDownloads, &expires); err != nil {
			return nil, fmt.Errorf("store: scan transfer: %w", err)
		}
		if err := json.Unmarshal([]byte(labels), &t.Labels); err != nil {
			return nil, fmt.Errorf("store: transfer %s labels: %w", t.ID, err)
		}
		if len(t.Labels) == 0 {
			t.Labels = nil
		}
		if len(t.Manifest) == 0 {
			t.Manifest = nil
		}
		t.Created = fromNanos(created)
		if completed.Valid {
			t.Completed = fromNanos(completed.Int64)
		}
		if expires != 0 {
			t.Obligations.ExpiresAt = fromNanos(expires)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query transfers: %w", err)
	}
	return ts, nil
}

func loadRecipients(ctx context.Context, tx *sql.Tx, t *Transfer) error {
	rows, err := tx.QueryContext(ctx, `SELECT recipient, acked, downloads FROM recipients WHERE transfer_id = ? ORDER BY pos`, t.ID)
	if err != nil {
		return fmt.Errorf("store: query recipients: %w", err)
	}
	defer rows.Close()
	t.Acked, t.Downloads = map[string]time.Time{}, map[string]int{}
	for rows.Next() {
		var r string
		var acked sql.NullInt64
		var n int
		if err := rows.Scan(&r, &acked, &n); err != nil {
			return fmt.Errorf("store: scan recipient: %w", err)
		}
		t.Recipients = append(t.Recipients, r)
		if acked.Valid {
			t.Acked[r] = fromNanos(acked.Int64)
		}
		if n > 0 {
			t.Downloads[r] = n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: query recipients: %w", err)
	}
	return nil
}

// Ack records that recipient received the transfer at now. It returns
// [ErrNotFound] if there is no such transfer or recipient is not one of its
// recipients, and [ErrNotComplete] if the transfer is not ready. Acking
// again is not an error and keeps the first time.
func (s *Store) Ack(ctx context.Context, id, recipient string, now time.Time) error {
	_, err := s.AckOnce(ctx, id, recipient, now)
	return err
}

// AckOnce is [Store.Ack] that also reports whether this call recorded the
// acknowledgement (first) or found it recorded already, by any replica: of
// concurrent acks of one recipient exactly one is first.
func (s *Store) AckOnce(ctx context.Context, id, recipient string, now time.Time) (first bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		first = false
		var state State
		err := tx.QueryRowContext(ctx, `SELECT state FROM transfers WHERE id = ?`, id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: transfer %s", ErrNotFound, id)
		}
		if err != nil {
			return fmt.Errorf("store: ack: %w", err)
		}
		if state != StateReady {
			return fmt.Errorf("%w: transfer %s is %s", ErrNotComplete, id, state)
		}
		var acked sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT acked FROM recipients WHERE transfer_id = ? AND recipient = ?`,
			id, recipient).Scan(&acked)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s is not a recipient of transfer %s", ErrNotFound, recipient, id)
		}
		if err != nil {
			return fmt.Errorf("store: ack: %w", err)
		}
		if acked.Valid {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE recipients SET acked = ? WHERE transfer_id = ? AND recipient = ?`,
			now.UnixNano(), id, recipient); err != nil {
			return fmt.Errorf("store: ack: %w", err)
		}
		first = true
		return nil
	})
	return first, err
}

// DeleteTransfer removes the transfer's metadata and its spool files, or
// returns [ErrNotFound]. It waits for an upload in progress on the transfer
// to finish first.
func (s *Store) DeleteTransfer(ctx context.Context, id string) error {
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return fmt.Errorf("store: delete transfer %s: %w", id, err)
	}
	defer unlock()
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM transfers WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("store: delete transfer: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: transfer %s", ErrNotFound, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Metadata first: a crash here leaves orphan files, which Open removes,
	// never metadata pointing at missing ciphertext.
	return s.removeCiphertext(ctx, id)
}
