package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// File names of a CA directory, as written by [WriteCA].
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// Permissions of what this package writes.
const (
	publicPerm  os.FileMode = 0o644
	privatePerm os.FileMode = 0o600
	dirPerm     os.FileMode = 0o700
)

// WriteCA writes ca to dir/ca.crt (0644) and dir/ca.key (0600, PKCS #8
// PEM), making dir (0700) if needed.
func WriteCA(dir string, ca *CA) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return fmt.Errorf("certs: encoding CA key: %w", err)
	}
	if err := writeFile(filepath.Join(dir, CAKeyFile), pemBlock("PRIVATE KEY", keyDER), privatePerm); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, CACertFile), pemBlock("CERTIFICATE", ca.Cert.Raw), publicPerm)
}

// LoadCA reads a CA written by [WriteCA] from dir. The trust domain is the
// CA certificate's URI SAN.
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	cert, err := readCert(certPath)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || len(cert.URIs) != 1 {
		return nil, fmt.Errorf("certs: %s: not a trust domain CA (needs CA:true and one spiffe:// URI SAN)", certPath)
	}
	td, err := spiffeid.TrustDomainFromURI(cert.URIs[0])
	if err != nil {
		return nil, fmt.Errorf("certs: %s: URI SAN %q: %w", certPath, cert.URIs[0], err)
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("certs: %s does not match the certificate in %s", keyPath, certPath)
	}
	return &CA{TrustDomain: td, Cert: cert, Key: key}, nil
}

// WriteSVID writes svid's certificate chain to certPath (PEM, 0644) and its
// private key to keyPath (PKCS #8 PEM, created 0600). Missing parent
// directories are made 0700.
func WriteSVID(certPath, keyPath string, svid *x509svid.SVID) error {
	if svid == nil || len(svid.Certificates) == 0 || svid.PrivateKey == nil {
		return errors.New("certs: WriteSVID: SVID needs certificates and a private key")
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(svid.PrivateKey)
	if err != nil {
		return fmt.Errorf("certs: encoding SVID key: %w", err)
	}
	var chain []byte
	for _, c := range svid.Certificates {
		chain = append(chain, pemBlock("CERTIFICATE", c.Raw)...)
	}
	if err := writeFile(keyPath, pemBlock("PRIVATE KEY", keyDER), privatePerm); err != nil {
		return err
	}
	return writeFile(certPath, chain, publicPerm)
}

// LoadSVID reads an X.509-SVID written by [WriteSVID]. It checks what
// [x509svid.Load] checks: one SPIFFE ID, a leaf that is not a CA, and a key
// that matches.
func LoadSVID(certPath, keyPath string) (*x509svid.SVID, error) {
	svid, err := x509svid.Load(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("certs: loading X.509-SVID from %s and %s: %w", certPath, keyPath, err)
	}
	return svid, nil
}

// WriteBundle writes b's X.509 authorities to path as PEM (0644).
func WriteBundle(path string, b *x509bundle.Bundle) error {
	data, err := b.Marshal()
	if err != nil {
		return fmt.Errorf("certs: encoding bundle of %s: %w", b.TrustDomain(), err)
	}
	return writeFile(path, data, publicPerm)
}

// LoadBundles reads one X.509 bundle per trust domain: each PEM file holds
// the CA certificates of the trust domain it is mapped from.
func LoadBundles(trustDomainToPath map[string]string) (*x509bundle.Set, error) {
	set := x509bundle.NewSet()
	for _, name := range slices.Sorted(maps.Keys(trustDomainToPath)) {
		path := trustDomainToPath[name]
		td, err := spiffeid.TrustDomainFromString(name)
		if err != nil {
			return nil, fmt.Errorf("certs: bundle %s: trust domain %q: %w", path, name, err)
		}
		b, err := x509bundle.Load(td, path)
		if err != nil {
			return nil, fmt.Errorf("certs: loading bundle of %s from %s: %w", td, path, err)
		}
		if b.Empty() {
			return nil, fmt.Errorf("certs: bundle %s of %s holds no certificate", path, td)
		}
		set.Add(b)
	}
	return set, nil
}

// writeFile atomically writes data to path with perm: a temporary file in
// the same directory (created 0600 by os.CreateTemp, so a key is never
// readable by others, not even for a moment) is filled, synced and renamed.
func writeFile(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if perm != privatePerm {
		if err := f.Chmod(perm); err != nil { // before any byte is written
			return fmt.Errorf("certs: %w", err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// readCert reads the first certificate of a PEM file.
func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certs: %s: no PEM CERTIFICATE block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	return cert, nil
}

// readKey reads a PKCS #8 PEM private key.
func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("certs: %s: no PEM PRIVATE KEY (PKCS #8) block", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certs: %s: key of type %T cannot sign", path, key)
	}
	return signer, nil
}
