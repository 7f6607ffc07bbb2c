package policy

import (
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// FuzzPartyNames: a party given only by its ID string (as in explain inputs) gets
// the same trust domain and path as the parsed SPIFFE ID would give it, so site
// matching cannot be steered by a spelling; a string that is not a SPIFFE ID
// never yields a trust domain with a slash in it.
func FuzzPartyNames(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		p := Party{ID: s}.withNames()
		if strings.Contains(p.TrustDomain, "/") {
			t.Fatalf("%q gave the trust domain %q", s, p.TrustDomain)
		}
		id, err := spiffeid.FromString(s)
		if err != nil {
			return
		}
		if want := PartyOf(id); p.ID != want.ID || p.TrustDomain != want.TrustDomain || p.Path != want.Path {
			t.Fatalf("%q: withNames gives %q %q, the SPIFFE ID %q %q", s, p.TrustDomain, p.Path, want.TrustDomain, want.Path)
		}
	})
}
