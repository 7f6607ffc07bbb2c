package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// EventVersion is the version of the Event record this package writes. A reader
// refuses versions it does not know rather than guess.
const EventVersion = 1

// Kind says what an Event records.
type Kind string

// The kinds of Event.
const (
	KindDecision        Kind = "decision"         // a policy decision with no other record: a refusal, a lookup, an inbox listing
	KindTransferCreated Kind = "transfer_created" // a send the policy allowed; the transfer exists, awaiting ciphertext
	KindUploadComplete  Kind = "upload_complete"  // every ciphertext byte arrived and its SHA-256 matched: the sender's receipt
	KindQuarantined     Kind = "upload_quarantined"
	KindDelivery        Kind = "delivery"         // ciphertext handed to a recipient after a fresh decision
	KindAck             Kind = "ack"              // a recipient acknowledged: the recipient's receipt
	KindKeyRegistration Kind = "key_registration" // an identity's age recipients, the basis of key transparency
	KindExpiry          Kind = "expiry"           // a transfer expired or was purged
	KindSFTPLogin       Kind = "sftp_login"       // a login on the SFTP front, allowed or refused
	KindAdmin           Kind = "admin"            // an operator's action
	KindDestruction     Kind = "destruction"      // the sweeper deleted a transfer's ciphertext; a certificate was issued
	KindLegalHold       Kind = "legal_hold"       // a legal hold placed (Action legal_hold_place) or lifted (legal_hold_lift)
	KindMatterRequest   Kind = "matter_request"   // a four-eyes request to add a recipient to a matter
	KindMatterApproval  Kind = "matter_approval"  // a four-eyes request approved: the recipient is granted
	KindHeldPastExpiry  Kind = "held_past_expiry" // the sweeper kept an expired transfer because its matter is on legal hold
	KindRiskAlert       Kind = "risk_alert"       // a request's statistical risk score reached the alert threshold (issue 16)
	KindDuplicateUpload Kind = "duplicate_upload" // an identical SFTP re-upload within the upload window, not delivered again; Transfer is the one it repeats
)

// Decision is the policy decision an Event was made under.
type Decision struct {
	ID      string   `json:"id,omitempty"`
	Allow   bool     `json:"allow"`
	Reasons []string `json:"reasons,omitempty"` // reason codes, e.g. "agreement.expired"
}

// Event is one audit log entry: who did what, to whom, under which decision. It
// never holds file contents or file names, only what the policy saw (matter, labels)
// and hashes. Its canonical encoding (Marshal) is the log entry, byte for byte.
type Event struct {
	V                int       `json:"v"`
	Kind             Kind      `json:"kind"`
	Time             time.Time `json:"time"`
	Actor            string    `json:"actor"`            // SPIFFE ID of who acted
	Action           string    `json:"action,omitempty"` // the policy action asked
	Recipients       []string  `json:"recipients,omitempty"`
	Transfer         string    `json:"transfer,omitempty"`
	Matter           string    `json:"matter,omitempty"`
	Labels           []string  `json:"labels,omitempty"`
	ManifestSHA256   string    `json:"manifest_sha256,omitempty"`
	CiphertextSHA256 string    `json:"ciphertext_sha256,omitempty"`
	CiphertextSize   int64     `json:"ciphertext_size,omitempty"`
	Keys             []string  `json:"keys,omitempty"` // age recipients registered
	Decision         *Decision `json:"decision,omitempty"`
	Detail           string    `json:"detail,omitempty"`
	// Obligations are those of the decision that allowed a transfer, in its
	// transfer_created entry.
	Obligations *Obligations `json:"obligations,omitempty"`
	// StatementSHA256 is the hex SHA-256 of the signed destruction statement
	// a destruction entry certifies (see Certificate).
	StatementSHA256 string `json:"statement_sha256,omitempty"`
	// Subject is the SPIFFE ID an admin action is about: the identity
	// revoked or unrevoked (issue 16).
	Subject string `json:"subject,omitempty"`
	// Sender is the sender of the transfer an event is about, when the
	// actor is someone else (a delivery, an ack, a destruction), so that the
	// sender's organisation is a party of the entry (issue 16).
	Sender string `json:"sender,omitempty"`
	// Registration is the owner-signed registration (api.SignedRegistration
	// JSON) of a key_registration's keys, so anyone can check who signed it.
	Registration []byte `json:"registration,omitempty"`
}

// Obligations are a transfer's obligations as the policy decided them.
type Obligations struct {
	RetentionDays int       `json:"retention_days"`
	MaxDownloads  int       `json:"max_downloads"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
}

// Marshal returns the canonical encoding of e: compact JSON, fields in a fixed
// order, times in UTC, labels sorted, no HTML escaping. Two equal events marshal
// to the same bytes.
func (e Event) Marshal() ([]byte, error) {
	e.V = EventVersion
	e.Time = e.Time.UTC()
	if len(e.Labels) > 0 {
		e.Labels = slices.Sorted(slices.Values(e.Labels))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("audit: encode event: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// ErrEventFormat is wrapped by ParseEvent's errors.
var ErrEventFormat = errors.New("audit: not a canonical audit event")

// ParseEvent decodes a log entry. It accepts only the canonical encoding of a known
// version: anything that would not marshal back to the same bytes is refused.
func ParseEvent(b []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrEventFormat, err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w: data after the event", ErrEventFormat)
	}
	if e.V != EventVersion {
		return Event{}, fmt.Errorf("%w: version %d, this lexgate reads version %d", ErrEventFormat, e.V, EventVersion)
	}
	again, err := e.Marshal()
	if err != nil {
		return Event{}, err
	}
	if !bytes.Equal(again, b) {
		return Event{}, fmt.Errorf("%w: not in canonical form", ErrEventFormat)
	}
	return e, nil
}

// lookupKey names the events a gateway finds again by subject: the latest upload
// completion of a transfer, a recipient's ack, an identity's key registration, a
// transfer's creation and its quarantine.
func (e Event) lookupKey() string {
	switch e.Kind {
	case KindUploadComplete:
		return LookupUpload(e.Transfer)
	case KindAck:
		return LookupAck(e.Transfer, e.Actor)
	case KindKeyRegistration:
		return LookupKeys(e.Actor)
	case KindQuarantined:
		return LookupQuarantine(e.Transfer)
	case KindTransferCreated:
		return LookupCreated(e.Transfer)
	case KindDestruction:
		return LookupDestruction(e.Transfer)
	case KindHeldPastExpiry:
		return LookupHeld(e.Transfer)
	}
	return ""
}

// LookupUpload is the Find key of a transfer's upload completion.
func LookupUpload(transfer string) string { return "upload " + transfer }

// LookupAck is the Find key of a recipient's acknowledgement of a transfer.
func LookupAck(transfer, recipient string) string { return "ack " + transfer + " " + recipient }

// LookupCreated is the Find key of a transfer's creation.
func LookupCreated(transfer string) string { return "created " + transfer }

// LookupQuarantine is the Find key of a transfer's quarantine.
func LookupQuarantine(transfer string) string { return "quarantine " + transfer }

// LookupDestruction is the Find key of a transfer's destruction.
func LookupDestruction(transfer string) string { return "destruction " + transfer }

// LookupHeld is the Find key of the entry saying a hold keeps a transfer past its expiry.
func LookupHeld(transfer string) string { return "held " + transfer }

// LookupKeys is the Find key of an identity's latest key registration.
func LookupKeys(id string) string { return "keys " + id }
