package gateway_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestSignatureWithInvalidCertificateRefused: the gateway judges a manifest's
// signature when it accepts it, so one made with a certificate that already
// expired, or is not valid yet, is refused even when the caller's TLS
// certificate is current; nothing is stored.
func TestSignatureWithInvalidCertificateRefused(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	ca, err := certs.LoadCA(filepath.Join(env.PKI, "harbor-law.example"))
	if err != nil {
		t.Fatal(err)
	}
	alice := env.NewClient(gatewaytest.Alice, false)
	team := env.NewClient(gatewaytest.Team, false)
	teamKey := team.Register()
	now := time.Now()
	for _, tc := range []struct {
		name     string
		from, to time.Time
	}{
		{"expired", now.Add(-time.Hour), now.Add(-time.Minute)},
		{"not yet valid", now.Add(time.Hour), now.Add(2 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signer, err := ca.MintSVID(spiffeid.RequireFromString(gatewaytest.Alice), certs.SVIDOptions{NotBefore: tc.from, NotAfter: tc.to})
			if err != nil {
				t.Fatal(err)
			}
			c := alice.In(t)
			c.SVID = signer // signs with it; the TLS connection keeps alice's current SVID
			st, _, e := c.Create([]string{gatewaytest.Team}, nil, gatewaytest.Encrypt(t, []byte("brief"), teamKey.Recipient()), nil)
			if st != http.StatusBadRequest || !strings.Contains(e.Message, "not valid at signing time") {
				t.Fatalf("create: %d %+v, want 400 naming the certificate not valid at signing time", st, e)
			}
		})
	}
	if n := env.StoreStats().Transfers; n != 0 {
		t.Errorf("%d transfers stored, want none", n)
	}
	// The same manifest signed with alice's current SVID is accepted.
	if st, _, e := alice.Create([]string{gatewaytest.Team}, nil, gatewaytest.Encrypt(t, []byte("brief"), teamKey.Recipient()), nil); st != http.StatusCreated {
		t.Fatalf("create with a current SVID: %d %+v", st, e)
	}
}
