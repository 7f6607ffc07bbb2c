package api

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Owner-signed key registrations (issue 16). The owner of a SPIFFE ID signs
// its age recipients with its X.509-SVID key; the gateway stores and logs
// the signed registration (publicly: key transparency), and lex send checks,
// before it encrypts a byte, that each recipient's registration was signed
// by that recipient. The gateway signs the registrations of the custodial
// SFTP accounts whose age identity it holds, and says so (Custodial); their
// owners see it with lex keys --watch.

// registrationContext separates registration signatures from manifests'.
const registrationContext = "lexgate key registration v1\n"

// RegistrationVersion is the version of the Registration document.
const RegistrationVersion = 1

// Registration is what an identity signs when it registers age recipients.
type Registration struct {
	Version    int       `json:"v"`
	ID         string    `json:"id"` // the SPIFFE ID the recipients belong to
	Recipients []string  `json:"recipients"`
	Time       time.Time `json:"time"`
	// Previous is the hash (SignedRegistration.Hash) of the registration it
	// replaces, "" for the first.
	Previous string `json:"previous,omitempty"`
	// Custodial: signed by the gateway, which holds the age identity of a
	// custodial SFTP account.
	Custodial bool `json:"custodial,omitempty"`
}

// SignedRegistration is a Registration as signed bytes, with the signature
// and the signer's certificate chain (leaf first, DER).
type SignedRegistration struct {
	Payload   []byte   `json:"payload"`
	Signature []byte   `json:"signature"`
	Chain     [][]byte `json:"chain"`
}

// SignRegistration signs r with key, whose X.509-SVID chain is attached.
func SignRegistration(r Registration, key crypto.Signer, chain []*x509.Certificate) (*SignedRegistration, error) {
	r.Version = RegistrationVersion
	if r.Time.IsZero() {
		r.Time = time.Now().UTC().Truncate(time.Second)
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode registration: %w", err)
	}
	sig, err := signWith(key, registrationContext, payload)
	if err != nil {
		return nil, err
	}
	sr := &SignedRegistration{Payload: payload, Signature: sig}
	for _, c := range chain {
		sr.Chain = append(sr.Chain, c.Raw)
	}
	return sr, nil
}

// Hash is the hex SHA-256 of the signed payload.
func (sr *SignedRegistration) Hash() string {
	h := sha256.Sum256(sr.Payload)
	return hex.EncodeToString(h[:])
}

// Verify checks the signature and that the signer's X.509-SVID chained to
// its trust domain's bundle in bundles when the registration was made
// (judged at signing time). It returns the registration and the signer:
// the caller decides whether the signer may register for Registration.ID.
func (sr *SignedRegistration) Verify(bundles x509bundle.Source) (Registration, spiffeid.ID, error) {
	var r Registration
	if len(sr.Payload) == 0 || len(sr.Payload) > MaxManifestSize {
		return r, spiffeid.ID{}, fmt.Errorf("registration: payload of %d bytes", len(sr.Payload))
	}
	if err := json.Unmarshal(sr.Payload, &r); err != nil {
		return r, spiffeid.ID{}, fmt.Errorf("registration: %w", err)
	}
	if r.Version != RegistrationVersion || r.ID == "" || len(r.Recipients) == 0 || r.Time.IsZero() {
		return r, spiffeid.ID{}, fmt.Errorf("registration: version %d, id %q, %d recipients: not a registration", r.Version, r.ID, len(r.Recipients))
	}
	if len(sr.Chain) == 0 || len(sr.Chain) > maxChainCerts {
		return r, spiffeid.ID{}, fmt.Errorf("registration: signer chain of %d certificates", len(sr.Chain))
	}
	chain := make([]*x509.Certificate, 0, len(sr.Chain))
	for i, der := range sr.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return r, spiffeid.ID{}, fmt.Errorf("registration: signer certificate %d: %w", i, err)
		}
		chain = append(chain, c)
	}
	id, _, err := x509svid.Verify(chain, bundles, x509svid.WithTime(r.Time))
	if err != nil {
		return r, spiffeid.ID{}, fmt.Errorf("registration: signer SVID at %s: %w", r.Time.Format(time.RFC3339), err)
	}
	if verifyWith(chain[0].PublicKey, registrationContext, sr.Payload, sr.Signature) != nil {
		return r, spiffeid.ID{}, fmt.Errorf("registration: the signature does not verify with %s's key", id)
	}
	return r, id, nil
}

// OwnerSigned checks that sr is a valid registration of recipients for id,
// signed by id itself, or by gateway as a custodial registration (reported
// by custodial). Anything else is an error naming who signed.
func (sr *SignedRegistration) OwnerSigned(bundles x509bundle.Source, id, gateway string, recipients []string) (custodial bool, err error) {
	r, signer, err := sr.Verify(bundles)
	if err != nil {
		return false, err
	}
	if r.ID != id {
		return false, fmt.Errorf("the registration is for %s, not %s", r.ID, id)
	}
	if !slices.Equal(r.Recipients, recipients) {
		return false, fmt.Errorf("the registration signs other keys than the ones served for %s", id)
	}
	switch s := signer.String(); {
	case s == id:
		return false, nil
	case s == gateway && gateway != "" && r.Custodial:
		return true, nil
	default:
		return false, fmt.Errorf("the registration for %s was signed by %s, not by its owner", id, s)
	}
}
