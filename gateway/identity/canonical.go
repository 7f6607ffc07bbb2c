package identity

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrNonCanonicalID is wrapped by the error that refuses a peer whose URI SAN
// is not spelled exactly as the SPIFFE ID it parses to.
var ErrNonCanonicalID = errors.New("identity: URI SAN is not a canonical SPIFFE ID")

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// requireCanonicalURI checks that the leaf's URI SAN, as its bytes are encoded in the
// certificate, is the canonical spelling of the SPIFFE ID verified from it.
// crypto/x509 parses URI SANs with net/url, which lowercases the scheme, so
// without this check "SPIFFE://td/path" would pass as "spiffe://td/path": one
// identity would have two spellings, and anything comparing raw certificate
// bytes (logs, other verifiers) could disagree with the gateway.
func requireCanonicalURI(leafDER []byte) error {
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return fmt.Errorf("identity: peer certificate: %w", err)
	}
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return fmt.Errorf("identity: peer certificate: %w", err)
	}
	uris, err := rawURISANs(leaf)
	if err != nil {
		return fmt.Errorf("identity: peer certificate: %w", err)
	}
	if len(uris) != 1 || uris[0] != id.String() {
		return fmt.Errorf("%w: %q, want %q", ErrNonCanonicalID, uris, id.String())
	}
	return nil
}

// rawURISANs returns the URI SANs of cert exactly as encoded.
func rawURISANs(cert *x509.Certificate) ([]string, error) {
	var uris []string
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var names cryptobyte.String
		if !in.ReadASN1(&names, cbasn1.SEQUENCE) || !in.Empty() {
			return nil, errors.New("malformed subject alternative names")
		}
		for !names.Empty() {
			var v cryptobyte.String
			var tag cbasn1.Tag
			if !names.ReadAnyASN1(&v, &tag) {
				return nil, errors.New("malformed subject alternative name")
			}
			if tag == cbasn1.Tag(6).ContextSpecific() { // uniformResourceIdentifier
				uris = append(uris, string(v))
			}
		}
	}
	return uris, nil
}
