package identity

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// FuzzPeerURI puts an arbitrary URI SAN in a client certificate signed by one of
// the trusted CAs and runs the gateway's own peer verification on it (the
// VerifyPeerCertificate of ServerTLSConfig, as in a handshake), then PeerID. Any
// identity it accepts is in the trust domain of the CA that signed it, is written
// canonically (lower-case trust domain; no empty, "." or ".." path element; no
// percent-encoding, so no two spellings name one party), and is never the revoked
// mallory, however the URI spells it (upper-case scheme or domain, dot segments,
// escapes, userinfo, port, trailing slash), nor a bare trust domain ID.
func FuzzPeerURI(f *testing.F) {
	e := newTestEnv(f)
	verify := e.src.ServerTLSConfig().VerifyPeerCertificate
	leafKey := newKey(f)
	cas := []*testCA{e.harbor, e.manila}
	f.Fuzz(func(t *testing.T, uri string, byManila bool) {
		u, err := url.Parse(uri)
		if err != nil {
			return
		}
		ca := cas[0]
		if byManila {
			ca = cas[1]
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(2),
			NotBefore:             time.Now().Add(-time.Minute),
			NotAfter:              time.Now().Add(time.Hour),
			URIs:                  []*url.URL{u},
			KeyUsage:              x509.KeyUsageDigitalSignature,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			BasicConstraintsValid: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &leafKey.PublicKey, ca.key)
		if err != nil {
			return
		}
		if verify([][]byte{der}, nil) != nil {
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("verified a certificate that does not parse: %v", err)
		}
		id, err := PeerID(&tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{leaf}})
		if err != nil {
			t.Fatalf("URI %q passed verification, but PeerID fails: %v", uri, err)
		}
		assertCanonicalID(t, uri, id)
		if id.TrustDomain() != ca.td {
			t.Fatalf("URI %q signed by the CA of %s was accepted as %s", uri, ca.td, id)
		}
		if id.Path() == "" {
			t.Fatalf("URI %q: the bare trust domain ID %s was accepted as a client", uri, id)
		}
		if id.String() == mallory {
			t.Fatalf("URI %q let the revoked %s in", uri, mallory)
		}
	})
}

func assertCanonicalID(t *testing.T, uri string, id spiffeid.ID) {
	t.Helper()
	s := id.String()
	again, err := spiffeid.FromString(s)
	if err != nil || again != id {
		t.Fatalf("URI %q became %s, which does not parse back to itself (%v)", uri, s, err)
	}
	td := id.TrustDomain().Name()
	if td != strings.ToLower(td) || strings.ContainsAny(s, "%@?#\\") || strings.Contains(td, ":") {
		t.Fatalf("URI %q became the non-canonical %s", uri, s)
	}
	if p := id.Path(); p != "" {
		for _, e := range strings.Split(p[1:], "/") {
			if e == "" || e == "." || e == ".." {
				t.Fatalf("URI %q became %s, with the path element %q", uri, s, e)
			}
		}
	}
}

// TestServerRefusesTrustDomainID: a leaf whose SPIFFE ID is its trust domain's
// (no path) is refused at the handshake, though go-spiffe would accept it.
func TestServerRefusesTrustDomainID(t *testing.T) {
	e := newTestEnv(t)
	leaf := e.harbor.svid(t, "/x", func(c *x509.Certificate) { c.URIs = []*url.URL{e.harbor.td.ID().URL()} })
	err := e.src.ServerTLSConfig().VerifyPeerCertificate([][]byte{leaf.Certificates[0].Raw}, nil)
	if !errors.Is(err, ErrTrustDomainID) {
		t.Fatalf("VerifyPeerCertificate = %v, want ErrTrustDomainID", err)
	}
}
