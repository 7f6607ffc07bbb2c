package gatewaytest

import (
	"path/filepath"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway"
)

// Bogota is an identity of a third organisation, bogota-lpo.example (known
// to the shipped policy data), for tests that need an outsider to the
// dev PKI's two organisations: start the env WithOrganisation(BogotaTD, "/site/review").
const (
	BogotaTD = "bogota-lpo.example"
	Bogota   = "spiffe://bogota-lpo.example/site/review"
)

// WithOrganisation adds a trust domain to the dev PKI, with SVIDs for the
// given paths, and makes the gateway accept it.
func WithOrganisation(trustDomain string, paths ...string) Option {
	return func(c *gateway.Config) {
		pki := filepath.Dir(filepath.Dir(c.Identity.SVIDCert)) // <pki>/<td>/gateway.crt
		spec := certs.DevSpec{Orgs: []certs.DevOrg{{TrustDomain: trustDomain, IDs: paths}}, TTL: certs.DefaultSVIDTTL}
		if err := certs.MintDev(pki, spec); err != nil {
			panic("gatewaytest: mint " + trustDomain + ": " + err.Error())
		}
		c.Identity.Bundles[trustDomain] = filepath.Join(pki, trustDomain, "bundle.pem")
	}
}
