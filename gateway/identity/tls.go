package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ErrRevoked is wrapped by the error that refuses a handshake from a
// revoked SPIFFE ID.
var ErrRevoked = errors.New("identity: SPIFFE ID is revoked")

// ErrTrustDomainID is wrapped by the error that refuses a handshake from a
// certificate naming a bare trust domain (spiffe://example.org): the X.509-SVID
// standard requires a leaf's SPIFFE ID to have a path, so that no workload
// speaks as its whole organisation.
var ErrTrustDomainID = errors.New("identity: a trust domain ID is not a workload's SPIFFE ID")

// ErrNoPeerCertificate is returned by [PeerID] for a connection without a
// verified peer certificate.
var ErrNoPeerCertificate = errors.New("identity: no peer certificate")

// ServerTLSConfig returns the mutual TLS configuration of the gateway's
// listeners (TCP and QUIC alike). It presents the gateway's current
// X.509-SVID and requires a client X.509-SVID that go-spiffe verifies
// (exactly one spiffe:// URI SAN, spelled canonically byte for byte, leaf not a
// CA, within its validity, chaining to the bundle of its trust domain) and that [Source.IsRevoked]
// does not deny. The minimum version is TLS 1.3; NextProtos is left empty
// for the caller (h2, h3). Each refused client certificate is logged with
// the reason; a client that sends no certificate at all is refused by
// crypto/tls itself, and the reason reaches the caller of Handshake.
func (s *Source) ServerTLSConfig() *tls.Config {
	cfg := tlsconfig.MTLSServerConfig(s, s, s.authorize)
	cfg.MinVersion = tls.VersionTLS13
	cfg.VerifyConnection = s.refuseRevokedResumption
	verify := cfg.VerifyPeerCertificate
	cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		err := verify(raw, chains)
		if err == nil {
			err = requireCanonicalURI(raw[0]) // verify accepted a leaf: raw[0] exists
		}
		if err != nil {
			s.log.Warn("identity: refused TLS handshake", slog.Any("claimed_uri_sans", claimedURIs(raw)), slog.String("reason", err.Error()))
		}
		return err
	}
	return cfg
}

// authorize is the [tlsconfig.Authorizer] of ServerTLSConfig: id was
// verified by go-spiffe against its trust domain's bundle; it must not be
// revoked.
func (s *Source) authorize(id spiffeid.ID, _ [][]*x509.Certificate) error {
	if id.Path() == "" {
		return fmt.Errorf("%w: %s", ErrTrustDomainID, id)
	}
	if _, err := s.GetX509BundleForTrustDomain(id.TrustDomain()); err != nil {
		return err
	}
	if s.IsRevoked(id) {
		return fmt.Errorf("%w: %s", ErrRevoked, id)
	}
	return nil
}

// claimedURIs returns the unverified URI SANs of the peer's leaf, for logs.
func claimedURIs(raw [][]byte) []string {
	if len(raw) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return nil
	}
	uris := make([]string, len(leaf.URIs))
	for i, u := range leaf.URIs {
		uris[i] = u.String()
	}
	return uris
}

// PeerID returns the SPIFFE ID of the peer of a connection whose handshake
// completed with [Source.ServerTLSConfig] or [ClientTLSConfig], which
// verified it. It fails with [ErrNoPeerCertificate] if there is no peer
// certificate.
func PeerID(cs *tls.ConnectionState) (spiffeid.ID, error) {
	if cs == nil || !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, ErrNoPeerCertificate
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("identity: peer certificate: %w", err)
	}
	return id, nil
}

// ClientTLSConfig returns a mutual TLS 1.3 client configuration that
// presents svid's X.509-SVID and accepts only the server whose SPIFFE ID is
// server, verified against bundles. It is for tests and in-process
// clients; a [Source] is both an svid and a bundles source.
func ClientTLSConfig(svid x509svid.Source, bundles x509bundle.Source, server spiffeid.ID) *tls.Config {
	cfg := tlsconfig.MTLSClientConfig(svid, bundles, tlsconfig.AuthorizeID(server))
	cfg.MinVersion = tls.VersionTLS13
	return cfg
}
