package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Destruction certificates. When the gateway deletes a transfer's ciphertext
// for good (its retention expired, or every recipient acknowledged it with
// purge_on_ack) it states what it deleted in a Statement, signs the statement
// as a C2SP signed note with the audit log's key, and logs a destruction
// entry that commits to the statement's SHA-256. The Certificate a party
// fetches is the signed statement plus the receipt of that entry: it
// verifies offline, with the log key a lex user has already pinned, and
// shows both that the gateway said it destroyed the ciphertext and that it
// said so in its public, append-only log, where it cannot later unsay it.
//
// The log key signs, not the gateway's X.509-SVID: an SVID lives hours and
// its chain must be judged at the time it signed, while the log key is the
// long-lived anchor every receipt already verifies against, and a
// certificate is read years later, by a regulator or a court.

// StatementVersion is the version of the Statement document.
const StatementVersion = 1

// statementHeader is the first line of a signed statement's text.
const statementHeader = "lexgate destruction statement v1"

// Reasons for a destruction, in Statement.Why.
const (
	WhyExpired    = "retention_expired"
	WhyPurgeOnAck = "purge_on_ack"
)

// Statement is what the gateway certifies about one destroyed transfer.
type Statement struct {
	Version          int       `json:"version"`
	Gateway          string    `json:"gateway"` // the gateway's SPIFFE ID
	Log              string    `json:"log"`     // the audit log's origin
	Transfer         string    `json:"transfer"`
	Sender           string    `json:"sender"`
	Recipients       []string  `json:"recipients"`
	Matter           string    `json:"matter"`
	ManifestSHA256   string    `json:"manifest_sha256"`
	CiphertextSHA256 string    `json:"ciphertext_sha256"`
	CiphertextSize   int64     `json:"ciphertext_size"`
	StoredAt         time.Time `json:"stored_at"`
	DestroyedAt      time.Time `json:"destroyed_at"`
	Why              string    `json:"why"`    // WhyExpired or WhyPurgeOnAck
	Detail           string    `json:"detail"` // the same in words
	// GatewayHeldKey says whether the gateway ever held a key that could
	// decrypt the ciphertext: true when a recipient is a custodial SFTP
	// account, whose age identity the gateway keeps.
	GatewayHeldKey bool `json:"gateway_held_decryption_key"`
	// KeyHeldFor lists those custodial recipients.
	KeyHeldFor []string `json:"key_held_for,omitempty"`
}

// text is the statement's signed text: a header line and its JSON.
func (s Statement) text() (string, error) {
	s.Version = StatementVersion
	s.StoredAt, s.DestroyedAt = s.StoredAt.UTC(), s.DestroyedAt.UTC()
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("audit: encode statement: %w", err)
	}
	return statementHeader + "\n" + string(b) + "\n", nil
}

// SignStatement returns s as a note signed with the log's key, and the hex
// SHA-256 of the signed note's text, for the destruction entry to commit to.
func (l *Log) SignStatement(s Statement) (signed []byte, sum string, err error) {
	text, err := s.text()
	if err != nil {
		return nil, "", err
	}
	signed, err = note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		return nil, "", fmt.Errorf("audit: sign statement: %w", err)
	}
	return signed, textSum(text), nil
}

func textSum(text string) string {
	h := sha256.Sum256([]byte(text))
	return hex.EncodeToString(h[:])
}

// Certificate is a destruction certificate as a party saves it: the signed
// statement and the receipt of the destruction entry that commits to it.
type Certificate struct {
	Version   int      `json:"version"`
	Statement string   `json:"statement"` // the signed note
	Receipt   *Receipt `json:"receipt"`
}

// CertificateVersion is the version of the Certificate document.
const CertificateVersion = 1

// Marshal encodes c as indented JSON, the certificate file format.
func (c *Certificate) Marshal() []byte {
	b, _ := json.MarshalIndent(c, "", "  ")
	return append(b, '\n')
}

// IsCertificate reports whether b looks like a certificate document rather
// than a receipt (lex verify takes either).
func IsCertificate(b []byte) bool {
	var probe struct {
		Statement *string `json:"statement"`
	}
	return json.Unmarshal(b, &probe) == nil && probe.Statement != nil
}

// ParseCertificate decodes a certificate file strictly.
func ParseCertificate(b []byte) (*Certificate, error) {
	var c Certificate
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("audit: not a destruction certificate: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("audit: certificate: data after the document")
	}
	if c.Version != CertificateVersion {
		return nil, fmt.Errorf("audit: certificate version %d, this lexgate reads version %d", c.Version, CertificateVersion)
	}
	if c.Receipt == nil {
		return nil, errors.New("audit: certificate has no receipt")
	}
	return &c, nil
}

// ErrCertificate is wrapped by VerifyCertificate's errors about the statement
// and its binding to the receipt (the receipt's own errors are VerifyReceipt's).
var ErrCertificate = errors.New("audit: destruction certificate is wrong")

// VerifyCertificate checks c offline against the log's public key: the
// statement's signature, the receipt (VerifyReceipt), and that the receipt's
// entry is the destruction of the statement's transfer and commits to this
// very statement. It returns the statement, the logged entry and the
// checkpoint.
func VerifyCertificate(c *Certificate, v note.Verifier) (Statement, Event, *log.Checkpoint, error) {
	n, err := note.Open([]byte(c.Statement), note.VerifierList(v))
	if err != nil {
		return Statement{}, Event{}, nil, fmt.Errorf("%w: the statement's signature: %v", ErrCertificate, err)
	}
	body, ok := strings.CutPrefix(n.Text, statementHeader+"\n")
	if !ok {
		return Statement{}, Event{}, nil, fmt.Errorf("%w: the signed text is not a destruction statement", ErrCertificate)
	}
	var st Statement
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil || st.Version != StatementVersion {
		return Statement{}, Event{}, nil, fmt.Errorf("%w: statement: %v (version %d)", ErrCertificate, err, st.Version)
	}
	ev, cp, err := VerifyReceipt(c.Receipt, v)
	if err != nil {
		return Statement{}, Event{}, nil, err
	}
	switch {
	case ev.Kind != KindDestruction:
		return st, ev, cp, fmt.Errorf("%w: the receipt's entry is a %s, not a destruction", ErrCertificate, ev.Kind)
	case ev.Transfer != st.Transfer:
		return st, ev, cp, fmt.Errorf("%w: the receipt is for transfer %s, the statement for %s", ErrCertificate, ev.Transfer, st.Transfer)
	case ev.StatementSHA256 != textSum(n.Text):
		return st, ev, cp, fmt.Errorf("%w: the logged entry commits to another statement", ErrCertificate)
	case ev.CiphertextSHA256 != st.CiphertextSHA256 || ev.CiphertextSize != st.CiphertextSize:
		return st, ev, cp, fmt.Errorf("%w: the logged ciphertext hash or size differs from the statement's", ErrCertificate)
	}
	return st, ev, cp, nil
}
