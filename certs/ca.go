package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// DefaultSVIDTTL is the lifetime of an X.509-SVID when [SVIDOptions].TTL is zero.
const DefaultSVIDTTL = 24 * time.Hour

// DefaultCATTL is the lifetime of a CA when a zero TTL is given to [NewCA].
const DefaultCATTL = 365 * 24 * time.Hour

// backdate is how far before "now" certificates start, to tolerate clock skew.
const backdate = time.Minute

// CA is a trust domain's certificate authority.
type CA struct {
	// TrustDomain is the trust domain whose SVIDs the CA signs.
	TrustDomain spiffeid.TrustDomain
	// Cert is the self-signed CA certificate.
	Cert *x509.Certificate
	// Key is the CA's private key.
	Key crypto.Signer
}

// NewCA makes a self-signed ECDSA P-256 CA for td, valid for ttl
// ([DefaultCATTL] if zero). Its only URI SAN is spiffe://<td>.
func NewCA(td spiffeid.TrustDomain, ttl time.Duration) (*CA, error) {
	if td.IsZero() {
		return nil, errors.New("certs: NewCA: empty trust domain")
	}
	if ttl < 0 {
		return nil, fmt.Errorf("certs: NewCA: negative TTL %v", ttl)
	}
	if ttl == 0 {
		ttl = DefaultCATTL
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generating CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notBefore := time.Now().Add(-backdate)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{td.Name()}, CommonName: "lexgate CA " + td.Name()},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(ttl),
		URIs:                  []*url.URL{td.ID().URL()},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certs: creating CA certificate for %s: %w", td, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parsing CA certificate: %w", err)
	}
	return &CA{TrustDomain: td, Cert: cert, Key: key}, nil
}

// SVIDOptions tunes [CA.MintSVID]. The zero value mints a valid
// X.509-SVID for 24 hours; the other fields let tests make bad
// certificates on purpose.
type SVIDOptions struct {
	TTL       time.Duration // lifetime; default DefaultSVIDTTL (24h)
	NotBefore time.Time     // zero: now-1m
	NotAfter  time.Time     // zero: NotBefore+TTL
	ExtraURIs []string      // extra URI SANs (to make an invalid SVID with two)
	NoURI     bool          // no URI SAN at all (plain TLS cert)
	IsCA      bool          // mint a CA certificate as the leaf (invalid SVID)
	DNSNames  []string      // DNS SANs
	// URIs, when set, are the URI SANs exactly as given instead of id's: to mint
	// malformed SPIFFE IDs (uppercase scheme, dot segments, userinfo...) for tests.
	URIs []*url.URL
}

// validity returns the certificate's validity window.
func (o SVIDOptions) validity() (notBefore, notAfter time.Time, err error) {
	ttl := o.TTL
	if ttl < 0 {
		return notBefore, notAfter, fmt.Errorf("certs: negative TTL %v", ttl)
	}
	if ttl == 0 {
		ttl = DefaultSVIDTTL
	}
	notBefore = o.NotBefore
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-backdate)
	}
	notAfter = o.NotAfter
	if notAfter.IsZero() {
		notAfter = notBefore.Add(ttl)
	}
	if !notAfter.After(notBefore) {
		return notBefore, notAfter, fmt.Errorf("certs: NotAfter %v is not after NotBefore %v", notAfter, notBefore)
	}
	return notBefore, notAfter, nil
}

// uris returns the URI SANs of an SVID for id.
func (o SVIDOptions) uris(id spiffeid.ID) ([]*url.URL, error) {
	var uris []*url.URL
	switch {
	case o.URIs != nil:
		uris = append(uris, o.URIs...)
	case !o.NoURI:
		uris = append(uris, id.URL())
	}
	for _, s := range o.ExtraURIs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("certs: extra URI SAN %q: %w", s, err)
		}
		uris = append(uris, u)
	}
	return uris, nil
}

// MintSVID issues an X.509-SVID for id, which must be in the CA's trust
// domain (id may be zero when opts.NoURI is set). The leaf has an ECDSA
// P-256 key, the digitalSignature key usage, the client and server
// authentication extended key usages and exactly one URI SAN, unless opts
// ask otherwise. The returned SVID's Certificates hold the leaf only: the
// CA certificate is in the trust bundle, not in the chain.
func (ca *CA) MintSVID(id spiffeid.ID, opts SVIDOptions) (*x509svid.SVID, error) {
	if !opts.NoURI && opts.URIs == nil && !id.MemberOf(ca.TrustDomain) {
		return nil, fmt.Errorf("certs: cannot mint %q with the CA of trust domain %q", id, ca.TrustDomain)
	}
	notBefore, notAfter, err := opts.validity()
	if err != nil {
		return nil, err
	}
	uris, err := opts.uris(id)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generating SVID key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{ca.TrustDomain.Name()}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		URIs:                  uris,
		DNSNames:              opts.DNSNames,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	if opts.IsCA {
		tmpl.IsCA = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: signing SVID for %q: %w", id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parsing SVID: %w", err)
	}
	svidID := id
	if opts.NoURI || opts.URIs != nil {
		svidID = spiffeid.ID{}
	}
	return &x509svid.SVID{ID: svidID, Certificates: []*x509.Certificate{cert}, PrivateKey: key}, nil
}

// Bundle returns the trust domain's X.509 bundle: the CA certificate.
func (ca *CA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.TrustDomain, []*x509.Certificate{ca.Cert})
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("certs: generating serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}

// keyID derives a subject key identifier from a public key.
func keyID(pub *ecdsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(der)
	return sum[:20]
}
