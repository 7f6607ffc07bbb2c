// Package certs mints the public key infrastructure a lexgate demo or test
// needs: one certificate authority per SPIFFE trust domain (one per
// organisation) and X.509-SVIDs for the parties of each.
//
// It is a development and test tool. Production deployments get their
// X.509-SVIDs from the SPIFFE Workload API (a SPIRE agent); see package
// github.com/lexgate/lexgate/gateway/identity. Nothing with a private key is
// ever checked in: keys are minted on demand, into memory or into a
// directory the caller chooses.
//
// # Minting in memory
//
// [NewCA] makes a self-signed ECDSA P-256 CA whose only URI SAN is the
// trust domain (spiffe://harbor-law.example). [CA.MintSVID] issues a leaf
// X.509-SVID for a SPIFFE ID of that trust domain; [CA.Bundle] is the
// trust domain's X.509 bundle, which peers use to verify those SVIDs.
//
// [SVIDOptions] can also make certificates that are wrong on purpose, so
// tests can check that they are refused: expired or not yet valid
// (NotBefore, NotAfter), two URI SANs (ExtraURIs), no SPIFFE ID at all
// (NoURI) or a CA certificate used as a leaf (IsCA).
//
// # Files
//
// [WriteCA] and [LoadCA], [WriteSVID] and [LoadSVID], [WriteBundle] and
// [LoadBundles] move these to and from PEM files. Certificates and bundles
// are written 0644, private keys (PKCS #8) 0600 from the moment the file
// is created, and directories that have to be made are 0700. Every file is
// written to a temporary name and renamed into place, so a reader never
// sees half a file.
//
// # The dev PKI
//
// [MintDev] writes a whole PKI, described by a [DevSpec], into a directory.
// [DefaultDevSpec] is the one the demo uses. For a directory dir, the
// layout is:
//
//	dir/<trust domain>/ca.crt         the trust domain's CA certificate
//	dir/<trust domain>/ca.key         its private key (0600)
//	dir/<trust domain>/bundle.pem     the X.509 bundle peers trust
//	dir/<trust domain>/<name>.crt     an X.509-SVID (chain PEM)
//	dir/<trust domain>/<name>.key     its private key (0600)
//
// where <name> is the SPIFFE ID's path without its leading slash and with
// every other slash replaced by a dash. With the default spec:
//
//	dir/harbor-law.example/paralegal-alice.crt  spiffe://harbor-law.example/paralegal/alice
//	dir/harbor-law.example/legacy-dms.crt       spiffe://harbor-law.example/legacy/dms
//	dir/harbor-law.example/gateway.crt          spiffe://harbor-law.example/gateway (the gateway itself)
//	dir/manila-lpo.example/site-review-team.crt spiffe://manila-lpo.example/site/review-team
//
// Running MintDev again on the same directory keeps each existing CA (so
// bundles already handed out stay valid) and mints fresh SVIDs.
//
// # The command
//
// [Command] implements "lexgate certs", so the binary's main stays a few
// lines:
//
//	lexgate certs dev   --out DIR [--ttl 24h]
//	lexgate certs ca    --trust-domain TD --out DIR [--ttl 8760h]
//	lexgate certs issue --ca DIR --id spiffe://TD/PATH --cert FILE --key FILE [--ttl 24h]
//
// It exits 0 on success, 1 on error and 2 on a usage error.
//
// All errors returned by this package start with "certs: ".
package certs
