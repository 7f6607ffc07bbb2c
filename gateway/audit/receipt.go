package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// ReceiptVersion is the version of the Receipt document.
const ReceiptVersion = 1

// Receipt proves that an Event is in the log: the entry exactly as logged (the
// leaf), its index, its RFC 6962 leaf hash, an inclusion proof, and the signed
// checkpoint the proof leads to; for a private entry, whose leaf is a
// commitment, also the event (Body) and the salt that open it. It verifies
// offline with the log's public key (VerifyReceipt).
type Receipt struct {
	Version        int    `json:"version"`
	Index          uint64 `json:"index"`
	Entry          string `json:"entry"`     // the leaf, byte for byte: a commitment, or a public event's canonical JSON
	LeafHash       string `json:"leaf_hash"` // base64 RFC 6962 leaf hash of Entry
	TreeSize       uint64 `json:"tree_size"`
	InclusionProof Hashes `json:"inclusion_proof"`
	Checkpoint     string `json:"checkpoint"` // C2SP signed note
	// Salt and Body open a private entry's commitment: the event's
	// canonical JSON and its random salt. Empty for a public entry.
	Salt []byte `json:"salt,omitempty"`
	Body string `json:"body,omitempty"`
}

// The parts of a receipt that VerifyReceipt names when one is wrong.
var (
	// ErrReceiptEntry: the entry is not the one the leaf hash commits to, or not an event.
	ErrReceiptEntry = errors.New("audit: receipt entry is wrong")
	// ErrReceiptProof: the inclusion proof does not lead from the leaf to the checkpoint's root.
	ErrReceiptProof = errors.New("audit: receipt inclusion proof is wrong")
	// ErrReceiptCheckpoint: the checkpoint is malformed, for another log, or not signed by the pinned key.
	ErrReceiptCheckpoint = errors.New("audit: receipt checkpoint is wrong")
)

func leafHash(entry []byte) string {
	return base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(entry))
}

// Hashes are Merkle node hashes, base64 in JSON. Decoding is strict: a hash whose
// base64 has padding bits set is refused rather than read as another spelling.
type Hashes [][]byte

// UnmarshalJSON implements json.Unmarshaler.
func (h *Hashes) UnmarshalJSON(b []byte) error {
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	out := make(Hashes, 0, len(ss))
	for i, s := range ss {
		d, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return fmt.Errorf("hash %d: %v", i, err)
		}
		out = append(out, d)
	}
	*h = out
	return nil
}

// strictSignatures refuses signature lines whose base64 is not canonical (set
// padding bits), which a lenient decoder would read as the same signature: a
// receipt that differs from the issued one by any byte does not verify.
func strictSignatures(note string) error {
	_, sigs, ok := strings.Cut(note, "\n\n")
	if !ok {
		return errors.New("no signature block")
	}
	for _, line := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "\u2014" {
			return fmt.Errorf("malformed signature line %q", line)
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(f[2]); err != nil {
			return fmt.Errorf("signature of %s is not canonical base64: %v", f[1], err)
		}
	}
	return nil
}

// Marshal encodes r as indented JSON, the receipt file format.
func (r *Receipt) Marshal() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return append(b, '\n')
}

// ParseReceipt decodes a receipt file strictly.
func ParseReceipt(b []byte) (*Receipt, error) {
	var r Receipt
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		if strings.Contains(err.Error(), "inclusion_proof") || strings.Contains(err.Error(), "hash ") {
			return nil, fmt.Errorf("%w: %v", ErrReceiptProof, err)
		}
		return nil, fmt.Errorf("audit: receipt is not a receipt document: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("audit: receipt: data after the receipt document")
	}
	if r.Version != ReceiptVersion {
		return nil, fmt.Errorf("audit: receipt version %d, this lexgate reads version %d", r.Version, ReceiptVersion)
	}
	return &r, nil
}

// VerifyReceipt checks r offline against the log's public key: the checkpoint's
// signature and origin, the entry against its leaf hash, and the inclusion proof
// from the leaf to the checkpoint's root. It returns the logged event and the
// checkpoint. An error wraps ErrReceiptCheckpoint, ErrReceiptEntry or
// ErrReceiptProof, naming the part that is wrong.
func VerifyReceipt(r *Receipt, v note.Verifier) (Event, *log.Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint([]byte(r.Checkpoint), v.Name(), v)
	if err != nil {
		return Event{}, nil, fmt.Errorf("%w: %v", ErrReceiptCheckpoint, err)
	}
	if err := strictSignatures(r.Checkpoint); err != nil {
		return Event{}, nil, fmt.Errorf("%w: %v", ErrReceiptCheckpoint, err)
	}
	if cp.Size != r.TreeSize {
		return Event{}, nil, fmt.Errorf("%w: it is for tree size %d, the receipt says %d", ErrReceiptCheckpoint, cp.Size, r.TreeSize)
	}
	if leafHash([]byte(r.Entry)) != r.LeafHash {
		return Event{}, nil, fmt.Errorf("%w: its hash is not the receipt's leaf_hash: the entry was altered", ErrReceiptEntry)
	}
	lf, err := ParseLeaf([]byte(r.Entry))
	if err != nil {
		return Event{}, nil, fmt.Errorf("%w: %v", ErrReceiptEntry, err)
	}
	if lf.Public != nil && (r.Body != "" || r.Salt != nil) {
		return Event{}, nil, fmt.Errorf("%w: a public entry with a body", ErrReceiptEntry)
	}
	ev, err := lf.Open(r.Salt, []byte(r.Body))
	if err != nil {
		return Event{}, nil, fmt.Errorf("%w: %v", ErrReceiptEntry, err)
	}
	lh, err := base64.StdEncoding.DecodeString(r.LeafHash)
	if err != nil {
		return Event{}, nil, fmt.Errorf("%w: leaf_hash: %v", ErrReceiptEntry, err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, r.TreeSize, lh, r.InclusionProof, cp.Hash); err != nil {
		return Event{}, nil, fmt.Errorf("%w: entry %d is not shown in the tree of size %d: %v", ErrReceiptProof, r.Index, r.TreeSize, err)
	}
	return ev, cp, nil
}
