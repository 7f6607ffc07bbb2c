package certs

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

var (
	harbor = spiffeid.RequireTrustDomainFromString("harbor-law.example")
	manila = spiffeid.RequireTrustDomainFromString("manila-lpo.example")
	alice  = spiffeid.RequireFromPath(harbor, "/paralegal/alice")
)

func newTestCA(t *testing.T, td spiffeid.TrustDomain) *CA {
	t.Helper()
	ca, err := NewCA(td, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestNewCA(t *testing.T) {
	ca := newTestCA(t, harbor)
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate is not a CA: IsCA=%v KeyUsage=%v", c.IsCA, c.KeyUsage)
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://harbor-law.example" {
		t.Errorf("URI SANs = %v, want [spiffe://harbor-law.example]", c.URIs)
	}
	if c.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm = %v, want ECDSA", c.PublicKeyAlgorithm)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if _, err := NewCA(spiffeid.TrustDomain{}, time.Hour); err == nil || !strings.HasPrefix(err.Error(), "certs: ") {
		t.Errorf("NewCA(zero) error = %v, want a certs: error", err)
	}
}

func TestMintSVIDValid(t *testing.T) {
	ca := newTestCA(t, harbor)
	svid, err := ca.MintSVID(alice, SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf := svid.Certificates[0]
	if len(svid.Certificates) != 1 || svid.ID != alice {
		t.Fatalf("SVID = %v with %d certificates", svid.ID, len(svid.Certificates))
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != DefaultSVIDTTL {
		t.Errorf("lifetime = %v, want %v", got, DefaultSVIDTTL)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || leaf.IsCA {
		t.Errorf("KeyUsage = %v, IsCA = %v", leaf.KeyUsage, leaf.IsCA)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	id, _, err := x509svid.Verify(svid.Certificates, ca.Bundle())
	if err != nil || id != alice {
		t.Errorf("Verify = %v, %v; want %v", id, err, alice)
	}
}

func TestMintSVIDWrongTrustDomain(t *testing.T) {
	ca := newTestCA(t, manila)
	_, err := ca.MintSVID(alice, SVIDOptions{})
	if err == nil || !strings.Contains(err.Error(), "manila-lpo.example") {
		t.Errorf("MintSVID(other trust domain) error = %v", err)
	}
}

// TestMintSVIDBad checks that each bad-SVID option makes the certificate it
// promises, and that go-spiffe refuses it.
func TestMintSVIDBad(t *testing.T) {
	ca := newTestCA(t, harbor)
	now := time.Now()
	tests := []struct {
		name      string
		opts      SVIDOptions
		check     func(*x509.Certificate) bool
		verifyErr string
	}{
		{"expired", SVIDOptions{NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)},
			func(c *x509.Certificate) bool { return c.NotAfter.Before(now) }, "expired"},
		{"not yet valid", SVIDOptions{NotBefore: now.Add(time.Hour), TTL: time.Hour},
			func(c *x509.Certificate) bool {
				return c.NotBefore.After(now) && c.NotAfter.Sub(c.NotBefore) == time.Hour
			}, "not yet valid"},
		{"two URI SANs", SVIDOptions{ExtraURIs: []string{"spiffe://harbor-law.example/other"}},
			func(c *x509.Certificate) bool { return len(c.URIs) == 2 }, "more than one URI SAN"},
		{"no URI SAN", SVIDOptions{NoURI: true, DNSNames: []string{"localhost"}},
			func(c *x509.Certificate) bool {
				return len(c.URIs) == 0 && slices.Equal(c.DNSNames, []string{"localhost"})
			}, "no URI SAN"},
		{"CA as leaf", SVIDOptions{IsCA: true},
			func(c *x509.Certificate) bool { return c.IsCA }, "CA flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svid, err := ca.MintSVID(alice, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(svid.Certificates[0]) {
				t.Errorf("certificate does not have the requested defect")
			}
			_, _, err = x509svid.Verify(svid.Certificates, ca.Bundle())
			if err == nil || !strings.Contains(err.Error(), tt.verifyErr) {
				t.Errorf("Verify error = %v, want one containing %q", err, tt.verifyErr)
			}
		})
	}
}

func TestMintSVIDBadOptions(t *testing.T) {
	ca := newTestCA(t, harbor)
	now := time.Now()
	for name, opts := range map[string]SVIDOptions{
		"negative TTL":         {TTL: -time.Hour},
		"NotAfter < NotBefore": {NotBefore: now, NotAfter: now.Add(-time.Minute)},
		"bad extra URI":        {ExtraURIs: []string{"%zz"}},
	} {
		if _, err := ca.MintSVID(alice, opts); err == nil || !strings.HasPrefix(err.Error(), "certs: ") {
			t.Errorf("%s: error = %v, want a certs: error", name, err)
		}
	}
}

func TestCARoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca := newTestCA(t, harbor)
	if err := WriteCA(dir, ca); err != nil {
		t.Fatal(err)
	}
	checkPerm(t, filepath.Join(dir, CAKeyFile), 0o600)
	checkPerm(t, filepath.Join(dir, CACertFile), 0o644)
	checkPerm(t, dir, 0o700)
	got, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.TrustDomain != harbor || !got.Cert.Equal(ca.Cert) {
		t.Errorf("LoadCA = %v, %v", got.TrustDomain, got.Cert.Subject)
	}
	// The loaded key still signs SVIDs that the original bundle verifies.
	svid, err := got.MintSVID(alice, SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, ca.Bundle()); err != nil {
		t.Error(err)
	}
}

func TestLoadCAMismatchedKey(t *testing.T) {
	dir := t.TempDir()
	if err := WriteCA(dir, newTestCA(t, harbor)); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := WriteCA(other, newTestCA(t, harbor)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(other, CAKeyFile), filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("LoadCA(mismatched key) error = %v", err)
	}
	if _, err := LoadCA(t.TempDir()); err == nil || !strings.HasPrefix(err.Error(), "certs: ") {
		t.Errorf("LoadCA(empty dir) error = %v", err)
	}
}

func TestSVIDRoundTrip(t *testing.T) {
	ca := newTestCA(t, harbor)
	svid, err := ca.MintSVID(alice, SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "new", "dir")
	certPath, keyPath := filepath.Join(dir, "alice.crt"), filepath.Join(dir, "alice.key")
	if err := WriteSVID(certPath, keyPath, svid); err != nil {
		t.Fatal(err)
	}
	checkPerm(t, keyPath, 0o600)
	checkPerm(t, certPath, 0o644)
	checkPerm(t, dir, 0o700)
	checkPerm(t, filepath.Dir(dir), 0o700)
	got, err := LoadSVID(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != alice || !got.Certificates[0].Equal(svid.Certificates[0]) {
		t.Errorf("LoadSVID = %v", got.ID)
	}
	// Writing again over an existing key keeps it 0600.
	if err := WriteSVID(certPath, keyPath, svid); err != nil {
		t.Fatal(err)
	}
	checkPerm(t, keyPath, 0o600)
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if _, err := LoadSVID(certPath, filepath.Join(dir, "missing.key")); err == nil || !strings.Contains(err.Error(), "missing.key") {
		t.Errorf("LoadSVID(missing key) error = %v, want it to name the file", err)
	}
}

func TestBundles(t *testing.T) {
	dir := t.TempDir()
	harborCA, manilaCA := newTestCA(t, harbor), newTestCA(t, manila)
	paths := map[string]string{
		"harbor-law.example": filepath.Join(dir, "harbor.pem"),
		"manila-lpo.example": filepath.Join(dir, "manila.pem"),
	}
	for _, ca := range []*CA{harborCA, manilaCA} {
		if err := WriteBundle(paths[ca.TrustDomain.Name()], ca.Bundle()); err != nil {
			t.Fatal(err)
		}
	}
	checkPerm(t, paths["harbor-law.example"], 0o644)
	set, err := LoadBundles(paths)
	if err != nil {
		t.Fatal(err)
	}
	for _, ca := range []*CA{harborCA, manilaCA} {
		b, ok := set.Get(ca.TrustDomain)
		if !ok || !b.Equal(ca.Bundle()) {
			t.Errorf("bundle of %s missing or different", ca.TrustDomain)
		}
	}

	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]map[string]string{
		"missing file":     {"harbor-law.example": filepath.Join(dir, "nope.pem")},
		"bad trust domain": {"Harbor Law": paths["harbor-law.example"]},
		"empty bundle":     {"harbor-law.example": empty},
	} {
		_, err := LoadBundles(m)
		for _, path := range m {
			if err == nil || !strings.Contains(err.Error(), path) || !strings.HasPrefix(err.Error(), "certs: ") {
				t.Errorf("%s: error = %v, want a certs: error naming %s", name, err, path)
			}
		}
	}
}

func TestMintDev(t *testing.T) {
	dir := t.TempDir()
	spec := DefaultDevSpec()
	if err := MintDev(dir, spec); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"harbor-law.example": {"bundle.pem", "ca.crt", "ca.key", "gateway.crt", "gateway.key", "legacy-dms.crt", "legacy-dms.key", "paralegal-alice.crt", "paralegal-alice.key"},
		"manila-lpo.example": {"bundle.pem", "ca.crt", "ca.key", "site-review-team.crt", "site-review-team.key"},
	}
	for td, files := range want {
		entries, err := os.ReadDir(filepath.Join(dir, td))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
			perm := os.FileMode(0o644)
			if strings.HasSuffix(e.Name(), ".key") {
				perm = 0o600
			}
			checkPerm(t, filepath.Join(dir, td, e.Name()), perm)
		}
		if !slices.Equal(got, files) {
			t.Errorf("%s holds %v, want %v", td, got, files)
		}
	}

	bundles, err := LoadBundles(map[string]string{
		"harbor-law.example": filepath.Join(dir, "harbor-law.example", BundleFile),
		"manila-lpo.example": filepath.Join(dir, "manila-lpo.example", BundleFile),
	})
	if err != nil {
		t.Fatal(err)
	}
	gw := loadAndVerify(t, dir, DevGatewayID(), bundles)
	if gw != DevGatewayID() {
		t.Errorf("gateway SVID is %v", gw)
	}
	loadAndVerify(t, dir, spiffeid.RequireFromString("spiffe://manila-lpo.example/site/review-team"), bundles)

	// Re-running keeps the CAs and mints new SVIDs.
	caBefore, _ := os.ReadFile(filepath.Join(dir, "harbor-law.example", CACertFile))
	svidBefore, _ := os.ReadFile(filepath.Join(dir, "harbor-law.example", "gateway.crt"))
	if err := MintDev(dir, spec); err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(filepath.Join(dir, "harbor-law.example", CACertFile))
	svidAfter, _ := os.ReadFile(filepath.Join(dir, "harbor-law.example", "gateway.crt"))
	if string(caBefore) != string(caAfter) {
		t.Error("re-running MintDev replaced the CA")
	}
	if string(svidBefore) == string(svidAfter) {
		t.Error("re-running MintDev did not mint a new SVID")
	}
	loadAndVerify(t, dir, DevGatewayID(), bundles) // old bundle still verifies the new SVID
}

func TestMintDevBadSpec(t *testing.T) {
	for name, spec := range map[string]DevSpec{
		"no orgs":          {},
		"bad trust domain": {Orgs: []DevOrg{{TrustDomain: "Not A Domain"}}},
		"bad path":         {Orgs: []DevOrg{{TrustDomain: "a.example", IDs: []string{"no-slash"}}}},
		"empty path":       {Orgs: []DevOrg{{TrustDomain: "a.example", IDs: []string{""}}}},
	} {
		if err := MintDev(t.TempDir(), spec); err == nil || !strings.HasPrefix(err.Error(), "certs: ") {
			t.Errorf("%s: MintDev error = %v", name, err)
		}
	}
}

func loadAndVerify(t *testing.T, dir string, id spiffeid.ID, bundles *x509bundle.Set) spiffeid.ID {
	t.Helper()
	certPath, keyPath := DevSVIDPaths(dir, id)
	svid, err := LoadSVID(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := x509svid.Verify(svid.Certificates, bundles)
	if err != nil {
		t.Fatalf("%s: %v", certPath, err)
	}
	if got != id {
		t.Errorf("%s holds %v, want %v", certPath, got, id)
	}
	return got
}

func checkPerm(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}
