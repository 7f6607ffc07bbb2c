package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Private entries, public proofs (issue 16).
//
// A leaf of the log is either a commitment or a public event:
//
//   - Most events are private. The leaf is {"commitment":"<hex>"}, the
//     SHA-256 of a domain separator, a 32-byte random salt and the event's
//     canonical JSON (the body). The body and its salt are kept beside the
//     log (in its directory's bodies/, never served as tiles) and given only
//     to the parties of the event: the organisations (trust domains) of its
//     actor, sender, recipients and subject. A receipt carries the body and
//     the salt, so a party proves its entry to anyone with the receipt alone.
//   - Key registrations are public: the leaf is the event itself, so that
//     anyone can watch the keys registered under an identity (key
//     transparency). Entries of logs written before private entries existed
//     are public events too, and are read as such.
//
// Someone who is not a party sees, for a private entry, only that it exists,
// its position in the log and when the checkpoint that first covered it was
// published. The salt makes the commitment useless for guessing a body.

// commitDomain separates commitment hashes from every other SHA-256 in lexgate.
const commitDomain = "lexgate-audit-entry/1\x00"

// saltSize is the size of a private entry's salt in bytes.
const saltSize = 32

// IsPublic reports whether events of kind k are logged in the clear (key
// registrations) rather than as a commitment.
func IsPublic(k Kind) bool { return k == KindKeyRegistration }

// Commit returns the commitment of a private entry: SHA-256 over the domain
// separator, the salt and the body.
func Commit(salt, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(commitDomain))
	h.Write(salt)
	h.Write(body)
	return h.Sum(nil)
}

// CommitmentLeaf returns the leaf of a private entry with commitment c.
func CommitmentLeaf(c []byte) []byte { return commitLeaf(c) }

func commitLeaf(c []byte) []byte {
	return []byte(`{"commitment":"` + hex.EncodeToString(c) + `"}`)
}

// Leaf is a parsed log leaf: a public event, or the commitment of a private one.
type Leaf struct {
	Public     *Event // the event, for a public leaf
	Commitment []byte // SHA-256, for a private leaf
}

// ErrLeafFormat is wrapped by ParseLeaf's errors.
var ErrLeafFormat = errors.New("audit: not a lexgate audit leaf")

// ParseLeaf decodes a leaf: exactly {"commitment":"<64 lowercase hex>"}, or
// a canonical event.
func ParseLeaf(b []byte) (Leaf, error) {
	const pre, post = `{"commitment":"`, `"}`
	if rest, ok := bytes.CutPrefix(b, []byte(pre)); ok {
		h, ok := bytes.CutSuffix(rest, []byte(post))
		if !ok || len(h) != 2*sha256.Size {
			return Leaf{}, fmt.Errorf("%w: malformed commitment", ErrLeafFormat)
		}
		c, err := hex.DecodeString(string(h))
		if err != nil || hex.EncodeToString(c) != string(h) {
			return Leaf{}, fmt.Errorf("%w: commitment is not lowercase hex", ErrLeafFormat)
		}
		return Leaf{Commitment: c}, nil
	}
	ev, err := ParseEvent(b)
	if err != nil {
		return Leaf{}, fmt.Errorf("%w: %w", ErrLeafFormat, err)
	}
	return Leaf{Public: &ev}, nil
}

// ErrBodyMismatch is wrapped by the error of a body that is not the one a
// leaf commits to.
var ErrBodyMismatch = errors.New("audit: the body does not match the entry's commitment")

// Open returns the event of the leaf: a public leaf's own, or that of body
// and salt, which must be what the commitment commits to.
func (l Leaf) Open(salt, body []byte) (Event, error) {
	if l.Public != nil {
		return *l.Public, nil
	}
	if len(salt) != saltSize {
		return Event{}, fmt.Errorf("%w: the salt has %d bytes, want %d", ErrBodyMismatch, len(salt), saltSize)
	}
	if !bytes.Equal(Commit(salt, body), l.Commitment) {
		return Event{}, fmt.Errorf("%w: the body or its salt was altered", ErrBodyMismatch)
	}
	return ParseEvent(body)
}

// seal makes the leaf of ev: the event itself if it is public, otherwise a
// commitment, returning the salt and body to keep beside the log.
func seal(ev Event, rnd io.Reader) (leaf, salt, body []byte, err error) {
	body, err = ev.Marshal()
	if err != nil {
		return nil, nil, nil, err
	}
	if IsPublic(ev.Kind) {
		return body, nil, nil, nil
	}
	salt = make([]byte, saltSize)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return nil, nil, nil, fmt.Errorf("audit: salt: %w", err)
	}
	return commitLeaf(Commit(salt, body)), salt, body, nil
}

// Parties returns the organisations (trust domains) that are parties to ev,
// sorted: those of its actor, sender, recipients and subject. operator, the
// gateway's own SPIFFE ID, is no party when it acts (the sweeper, the SFTP
// front's ingest): the transfer's parties are.
func Parties(ev Event, operator string) []string {
	var tds []string
	add := func(id string) {
		if id == "" || id == operator {
			return
		}
		td, _, _ := strings.Cut(strings.TrimPrefix(id, "spiffe://"), "/")
		if td != "" && !slices.Contains(tds, td) {
			tds = append(tds, td)
		}
	}
	add(ev.Actor)
	add(ev.Sender)
	for _, r := range ev.Recipients {
		add(r)
	}
	add(ev.Subject)
	slices.Sort(tds)
	return tds
}
