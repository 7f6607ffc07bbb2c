package certs_test

import (
	"fmt"

	"github.com/lexgate/lexgate/certs"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// A CA for a law firm's trust domain issues an X.509-SVID to a paralegal;
// the firm's bundle verifies it.
func Example() {
	td := spiffeid.RequireTrustDomainFromString("harbor-law.example")
	ca, err := certs.NewCA(td, 0)
	if err != nil {
		panic(err)
	}
	alice := spiffeid.RequireFromPath(td, "/paralegal/alice")
	svid, err := ca.MintSVID(alice, certs.SVIDOptions{})
	if err != nil {
		panic(err)
	}
	id, _, err := x509svid.Verify(svid.Certificates, ca.Bundle())
	fmt.Println(id, err)

	// A CA certificate used as a leaf is not a valid SVID.
	bad, _ := ca.MintSVID(alice, certs.SVIDOptions{IsCA: true})
	_, _, err = x509svid.Verify(bad.Certificates, ca.Bundle())
	fmt.Println(err)
	// Output:
	// spiffe://harbor-law.example/paralegal/alice <nil>
	// x509svid: leaf certificate with CA flag set to true
}
