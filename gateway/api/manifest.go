package api

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ManifestVersion is the version of the Manifest document this package writes.
const ManifestVersion = 1

// Limits on a manifest's fields, checked by Validate.
const (
	MaxRecipients   = 64
	MaxLabels       = 32
	MaxManifestSize = 64 << 10 // bytes of a SignedManifest's Payload
	maxChainCerts   = 8
)

// signingContext separates manifest signatures from any other use of an SVID key.
const signingContext = "lexgate transfer manifest v1\n"

// Manifest describes one transfer. The sender signs it with the private key of its
// X.509-SVID: age files are anonymous, so the manifest is what tells a recipient who
// made the ciphertext and that the gateway did not swap it.
type Manifest struct {
	Version    int      `json:"version"`
	Sender     string   `json:"sender"`
	Recipients []string `json:"recipients"`
	Matter     string   `json:"matter"`
	Labels     []string `json:"labels,omitempty"`
	// Regions are the regions of the data subjects (ISO 3166 codes or "EU").
	Regions        []string `json:"data_subject_regions,omitempty"`
	FileCount      int      `json:"file_count"`
	PlaintextSize  int64    `json:"plaintext_size"`
	CiphertextSize int64    `json:"ciphertext_size"`
	// CiphertextSHA256 is the lowercase hex SHA-256 of the ciphertext, or empty
	// in the manifest that opens a streamed transfer (see Pending and SealRequest).
	CiphertextSHA256 string    `json:"ciphertext_sha256"`
	Created          time.Time `json:"created"`
	// Nonce makes two otherwise identical sends distinct transfers.
	Nonce string `json:"nonce"`
	// SealedBy is set when the sender did not encrypt and sign the transfer itself:
	// a legacy system uploaded plaintext over SFTP and the gateway named here
	// encrypted it on ingest and signed this manifest on the sender's behalf with
	// its own X.509-SVID. Verify then accepts that SVID as the signer. Empty for
	// everything lex sends.
	SealedBy string `json:"sealed_by,omitempty"`
	// Content is what the plaintext is: "" (ContentBundle) a lex bundle, a tar
	// with its own per-file manifest; ContentFile one file named Name.
	Content string `json:"content,omitempty"`
	// Name is the file's name when Content is ContentFile: one path element.
	Name string `json:"name,omitempty"`
}

// Kinds of plaintext a manifest describes.
const (
	ContentBundle = ""     // a lex bundle (tar with a per-file manifest)
	ContentFile   = "file" // a single file, as uploaded over SFTP
)

// SignedManifest is a Manifest as signed bytes, with the signature and the signer's
// certificate chain. The bytes signed are exactly Payload, so re-encoding cannot
// change what was signed.
type SignedManifest struct {
	Payload   []byte   `json:"payload"`
	Signature []byte   `json:"signature"`
	Chain     [][]byte `json:"chain"` // DER, leaf first
}

var (
	tokenRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	matterRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:-]{0,127}$`)
	regionRE = regexp.MustCompile(`^[A-Z]{2}$`)
	hexRE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ErrBadManifest is wrapped by every validation and verification failure.
var ErrBadManifest = errors.New("bad manifest")

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadManifest}, args...)...)
}

// Validate checks a manifest's fields: known version, parseable SPIFFE IDs, a matter
// and labels of the allowed alphabet, sane sizes and a hex SHA-256.
func (m *Manifest) Validate() error {
	if m.Version != ManifestVersion {
		return badf("version %d, want %d", m.Version, ManifestVersion)
	}
	if _, err := spiffeid.FromString(m.Sender); err != nil {
		return badf("sender %q: %v", m.Sender, err)
	}
	if len(m.Recipients) == 0 || len(m.Recipients) > MaxRecipients {
		return badf("%d recipients, want 1 to %d", len(m.Recipients), MaxRecipients)
	}
	seen := map[string]bool{}
	for _, r := range m.Recipients {
		if _, err := spiffeid.FromString(r); err != nil {
			return badf("recipient %q: %v", r, err)
		}
		if seen[r] {
			return badf("recipient %q named twice", r)
		}
		seen[r] = true
	}
	if !matterRE.MatchString(m.Matter) {
		return badf("matter %q: use 1-128 letters, digits and . _ / : -", m.Matter)
	}
	if len(m.Labels) > MaxLabels {
		return badf("%d labels, at most %d", len(m.Labels), MaxLabels)
	}
	for _, l := range m.Labels {
		if !tokenRE.MatchString(l) {
			return badf("label %q: use lowercase letters, digits and . _ -", l)
		}
	}
	for _, r := range m.Regions {
		if !regionRE.MatchString(r) {
			return badf("data-subject region %q: use a two-letter code such as DE or EU", r)
		}
	}
	if m.FileCount < 0 || m.PlaintextSize < 0 || m.CiphertextSize <= 0 {
		return badf("negative file count or size, or empty ciphertext")
	}
	if !m.Pending() && !hexRE.MatchString(m.CiphertextSHA256) {
		return badf("ciphertext_sha256 must be 64 lowercase hex digits")
	}
	if m.Created.IsZero() {
		return badf("created time missing")
	}
	if m.SealedBy != "" {
		if _, err := spiffeid.FromString(m.SealedBy); err != nil {
			return badf("sealed_by %q: %v", m.SealedBy, err)
		}
	}
	switch m.Content {
	case ContentBundle:
		if m.Name != "" {
			return badf("a name is only for content %q", ContentFile)
		}
	case ContentFile:
		if err := ValidFileName(m.Name); err != nil {
			return badf("%v", err)
		}
	default:
		return badf("content %q, want %q or %q", m.Content, ContentBundle, ContentFile)
	}
	return nil
}

// Pending reports whether the manifest leaves the ciphertext's SHA-256 to be
// sealed later: it opens a streamed transfer, which nobody can receive until the
// sender seals it with the final manifest (SealRequest). A recipient must never
// accept a pending manifest.
func (m *Manifest) Pending() bool { return m.CiphertextSHA256 == "" }

// SealOf checks that final may seal a streamed transfer opened by intent: final
// carries a ciphertext SHA-256 and is otherwise identical to intent, field by
// field, so nothing the policy decided on (sender, recipients, labels, matter,
// sizes, time, nonce) changed.
func SealOf(intent, final Manifest) error {
	if !intent.Pending() {
		return badf("the transfer was created with its ciphertext hash; it needs no seal")
	}
	if final.Pending() {
		return badf("the sealing manifest must carry the ciphertext's SHA-256")
	}
	a, errA := json.Marshal(intent)
	final.CiphertextSHA256 = ""
	b, errB := json.Marshal(final)
	if errA != nil || errB != nil || string(a) != string(b) {
		return badf("the sealing manifest differs from the one the policy decided on in more than the ciphertext hash")
	}
	return nil
}

// MaxFileName is the longest file name in bytes, as on most file systems.
const MaxFileName = 255

// ValidFileName checks a single-file transfer's name: 1 to MaxFileName bytes of
// valid UTF-8, one path element (no slash or backslash, not "." or ".."), and no
// NUL or other control character.
func ValidFileName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("file name %q is empty, \".\" or \"..\"", name)
	case len(name) > MaxFileName:
		return fmt.Errorf("file name of %d bytes, at most %d", len(name), MaxFileName)
	case !utf8.ValidString(name):
		return fmt.Errorf("file name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '/' || r == '\\' {
			return fmt.Errorf("file name %q holds a control character, slash or backslash", name)
		}
	}
	return nil
}

// Sign validates m and signs it with key, the private key of the sender's X.509-SVID
// whose chain (leaf first) is attached. It fills in Version, Created and Nonce when empty.
func Sign(m Manifest, key crypto.Signer, chain []*x509.Certificate) (*SignedManifest, error) {
	if m.Version == 0 {
		m.Version = ManifestVersion
	}
	if m.Created.IsZero() {
		m.Created = time.Now().UTC().Truncate(time.Second)
	}
	if m.Nonce == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("manifest nonce: %w", err)
		}
		m.Nonce = hex.EncodeToString(b[:])
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	sig, err := signPayload(key, payload)
	if err != nil {
		return nil, err
	}
	sm := &SignedManifest{Payload: payload, Signature: sig}
	for _, c := range chain {
		sm.Chain = append(sm.Chain, c.Raw)
	}
	return sm, nil
}

func signPayload(key crypto.Signer, payload []byte) ([]byte, error) {
	return signWith(key, signingContext, payload)
}

// signWith signs context followed by payload with key (Ed25519, or ECDSA
// over SHA-256): the context keeps a signature for one purpose from being
// taken for another.
func signWith(key crypto.Signer, context string, payload []byte) ([]byte, error) {
	msg := append([]byte(context), payload...)
	var (
		sig []byte
		err error
	)
	switch key.Public().(type) {
	case ed25519.PublicKey:
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("sign manifest: unsupported key type %T", key.Public())
	}
	if err != nil {
		return nil, fmt.Errorf("sign manifest: %w", err)
	}
	return sig, nil
}

// Hash is the manifest hash: hex SHA-256 of the signed payload. The gateway binds its
// policy decision to it, and the audit log records the transfer by it.
func (sm *SignedManifest) Hash() string {
	h := sha256.Sum256(sm.Payload)
	return hex.EncodeToString(h[:])
}

// Decode parses the payload without verifying anything.
func (sm *SignedManifest) Decode() (Manifest, error) {
	var m Manifest
	if len(sm.Payload) == 0 || len(sm.Payload) > MaxManifestSize {
		return m, badf("payload of %d bytes", len(sm.Payload))
	}
	if err := json.Unmarshal(sm.Payload, &m); err != nil {
		return m, badf("payload: %v", err)
	}
	return m, nil
}

// ErrSignerCertNotValid is wrapped, beside ErrBadManifest, when the signer's
// certificate was expired or not yet valid at the time the signature is judged at.
var ErrSignerCertNotValid = errors.New("the signer's certificate was not valid at signing time")

// Verify checks that the manifest was signed by the X.509-SVID in its chain, that the
// SVID chains to a bundle in bundles at time now, that its SPIFFE ID is the manifest's
// sender (or, for a manifest sealed on ingest, its SealedBy gateway), and that the
// manifest is valid. It returns the manifest and the signer's ID: a caller that
// accepts sealed manifests must check that the signer is a gateway it trusts.
//
// now is the time the signature is judged at. The gateway judges a manifest when
// it accepts it, at its own clock's now; everyone later judges it at the time the
// gateway accepted it (Transfer.VerifyManifest), so that a signature stays valid
// after the signer's short-lived SVID expired or rotated.
func (sm *SignedManifest) Verify(bundles x509bundle.Source, now time.Time) (Manifest, spiffeid.ID, error) {
	m, err := sm.Decode()
	if err != nil {
		return m, spiffeid.ID{}, err
	}
	if err := m.Validate(); err != nil {
		return m, spiffeid.ID{}, err
	}
	if len(sm.Chain) == 0 || len(sm.Chain) > maxChainCerts {
		return m, spiffeid.ID{}, badf("signer chain of %d certificates", len(sm.Chain))
	}
	chain := make([]*x509.Certificate, 0, len(sm.Chain))
	for i, der := range sm.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return m, spiffeid.ID{}, badf("signer certificate %d: %v", i, err)
		}
		chain = append(chain, c)
	}
	if leaf := chain[0]; now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return m, spiffeid.ID{}, fmt.Errorf("%w: %w: signed at %s with a certificate valid only from %s to %s",
			ErrBadManifest, ErrSignerCertNotValid, now.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	id, _, err := x509svid.Verify(chain, bundles, x509svid.WithTime(now))
	if err != nil {
		return m, spiffeid.ID{}, badf("signer SVID: %v", err)
	}
	if id.String() != m.Sender && (m.SealedBy == "" || id.String() != m.SealedBy) {
		return m, spiffeid.ID{}, badf("signed by %s but names sender %s", id, m.Sender)
	}
	if err := verifyPayload(chain[0].PublicKey, sm.Payload, sm.Signature); err != nil {
		return m, spiffeid.ID{}, err
	}
	return m, id, nil
}

func verifyPayload(pub any, payload, sig []byte) error {
	return verifyWith(pub, signingContext, payload, sig)
}

func verifyWith(pub any, context string, payload, sig []byte) error {
	msg := append([]byte(context), payload...)
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if ed25519.Verify(k, msg, sig) {
			return nil
		}
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		if ecdsa.VerifyASN1(k, d[:], sig) {
			return nil
		}
	default:
		return badf("unsupported signer key type %T", pub)
	}
	return badf("signature does not verify")
}
