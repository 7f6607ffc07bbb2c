package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// BundleFile is the name of a trust domain's bundle in a dev PKI directory.
const BundleFile = "bundle.pem"

// DevSpec describes a dev PKI: trust domains and the SPIFFE IDs to mint in
// each.
type DevSpec struct {
	// Orgs are the organisations, one trust domain each.
	Orgs []DevOrg
	// TTL is the lifetime of the SVIDs; zero means DefaultSVIDTTL. New CAs
	// get DefaultCATTL.
	TTL time.Duration
}

// DevOrg is one organisation of a [DevSpec].
type DevOrg struct {
	// TrustDomain is the organisation's trust domain, e.g. "harbor-law.example".
	TrustDomain string
	// IDs are SPIFFE ID paths like "/paralegal/alice".
	IDs []string
}

// DevGatewayID returns the gateway's own SPIFFE ID in the PKI of
// [DefaultDevSpec]: spiffe://harbor-law.example/gateway.
func DevGatewayID() spiffeid.ID {
	return spiffeid.RequireFromString("spiffe://harbor-law.example/gateway")
}

// DefaultDevSpec returns the PKI of the demo: a law firm,
// harbor-law.example (a paralegal, a legacy document management system and
// the gateway itself, spiffe://harbor-law.example/gateway), and an LPO site,
// manila-lpo.example (a review team).
func DefaultDevSpec() DevSpec {
	return DevSpec{
		Orgs: []DevOrg{
			{TrustDomain: "harbor-law.example", IDs: []string{"/paralegal/alice", "/legacy/dms", "/gateway"}},
			{TrustDomain: "manila-lpo.example", IDs: []string{"/site/review-team"}},
		},
		TTL: DefaultSVIDTTL,
	}
}

// DevFileName returns the base name, without extension, under which
// [MintDev] writes the SVID of id: its path without the leading slash and
// with the other slashes replaced by dashes ("/paralegal/alice" →
// "paralegal-alice").
func DevFileName(id spiffeid.ID) string {
	return strings.ReplaceAll(strings.TrimPrefix(id.Path(), "/"), "/", "-")
}

// DevSVIDPaths returns where [MintDev] writes the certificate and key of id
// under dir.
func DevSVIDPaths(dir string, id spiffeid.ID) (certPath, keyPath string) {
	base := filepath.Join(dir, id.TrustDomain().Name(), DevFileName(id))
	return base + ".crt", base + ".key"
}

// MintDev writes the dev PKI described by spec into dir (see the package
// documentation for the layout) and returns nil or the first error. A CA
// already in dir/<trust domain> is reused; SVIDs are always minted anew.
func MintDev(dir string, spec DevSpec) error {
	_, err := mintDev(dir, spec)
	return err
}

// mintDev is MintDev, also returning the files it wrote, for the command.
func mintDev(dir string, spec DevSpec) ([]string, error) {
	if len(spec.Orgs) == 0 {
		return nil, errors.New("certs: MintDev: the spec has no organisation")
	}
	var written []string
	for _, org := range spec.Orgs {
		files, err := mintDevOrg(dir, org, spec.TTL)
		written = append(written, files...)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// mintDevOrg writes one organisation's CA, bundle and SVIDs.
func mintDevOrg(dir string, org DevOrg, ttl time.Duration) ([]string, error) {
	td, err := spiffeid.TrustDomainFromString(org.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("certs: MintDev: trust domain %q: %w", org.TrustDomain, err)
	}
	ids := make([]spiffeid.ID, 0, len(org.IDs))
	for _, p := range org.IDs {
		id, err := spiffeid.FromPath(td, p)
		if err != nil || id.Path() == "" {
			return nil, fmt.Errorf("certs: MintDev: SPIFFE ID path %q in %s: %v", p, td, orNonEmpty(err))
		}
		ids = append(ids, id)
	}
	tdDir := filepath.Join(dir, td.Name())
	ca, written, err := loadOrNewCA(tdDir, td)
	if err != nil {
		return written, err
	}
	bundlePath := filepath.Join(tdDir, BundleFile)
	if err := WriteBundle(bundlePath, ca.Bundle()); err != nil {
		return written, err
	}
	written = append(written, bundlePath)
	for _, id := range ids {
		svid, err := ca.MintSVID(id, SVIDOptions{TTL: ttl})
		if err != nil {
			return written, err
		}
		certPath, keyPath := DevSVIDPaths(dir, id)
		if err := WriteSVID(certPath, keyPath, svid); err != nil {
			return written, err
		}
		written = append(written, certPath, keyPath)
	}
	return written, nil
}

// loadOrNewCA loads the CA in dir, or makes and writes one if dir has none.
func loadOrNewCA(dir string, td spiffeid.TrustDomain) (*CA, []string, error) {
	if _, err := os.Stat(filepath.Join(dir, CACertFile)); err == nil {
		ca, err := LoadCA(dir)
		if err != nil {
			return nil, nil, err
		}
		if ca.TrustDomain != td {
			return nil, nil, fmt.Errorf("certs: %s holds the CA of %s, not %s", dir, ca.TrustDomain, td)
		}
		return ca, nil, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	ca, err := NewCA(td, DefaultCATTL)
	if err != nil {
		return nil, nil, err
	}
	if err := WriteCA(dir, ca); err != nil {
		return nil, nil, err
	}
	return ca, []string{filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)}, nil
}

func orNonEmpty(err error) error {
	if err == nil {
		return errors.New("the path must not be empty")
	}
	return err
}
