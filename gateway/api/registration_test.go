package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
)

// TestOwnerSigned: a registration verifies only when signed by its owner
// (or by the gateway, marked custodial), for exactly the keys served, by an
// SVID valid when it was signed.
func TestOwnerSigned(t *testing.T) {
	p := newPKI(t)
	keys := []string{"age1one", "age1two"}
	sign := func(svidOf string, r api.Registration) *api.SignedRegistration {
		svid := p.alice
		switch svidOf {
		case "team":
			svid = p.team
		case "other":
			svid = p.other
		}
		sr, err := api.SignRegistration(r, svid.PrivateKey, svid.Certificates)
		if err != nil {
			t.Fatal(err)
		}
		return sr
	}
	own := api.Registration{ID: alice.String(), Recipients: keys}
	flipped := sign("alice", own)
	flipped.Signature[3] ^= 1
	for _, c := range []struct {
		name      string
		sr        *api.SignedRegistration
		gateway   string
		keys      []string
		custodial bool
		want      string
	}{
		{"owner", sign("alice", own), "", keys, false, ""},
		{"other identity", sign("team", own), "", keys, false, "signed by " + team.String()},
		{"untrusted CA", sign("other", own), "", keys, false, "signer SVID"},
		{"bad signature", flipped, "", keys, false, "does not verify"},
		{"other keys served", sign("alice", own), "", []string{"age1one"}, false, "other keys"},
		{"for another ID", sign("alice", api.Registration{ID: team.String(), Recipients: keys}), "", keys, false, "is for"},
		{"gateway, custodial", sign("team", api.Registration{ID: alice.String(), Recipients: keys, Custodial: true}), team.String(), keys, true, ""},
		{"gateway, not custodial", sign("team", own), team.String(), keys, false, "not by its owner"},
		{"expired at signing", sign("alice", api.Registration{ID: alice.String(), Recipients: keys, Time: time.Now().Add(48 * time.Hour)}), "", keys, false, "signer SVID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			custodial, err := c.sr.OwnerSigned(p.set, alice.String(), c.gateway, c.keys)
			if c.want == "" && (err != nil || custodial != c.custodial) {
				t.Fatalf("custodial %v, err %v", custodial, err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

// FuzzRegistrationVerify: bytes from a gateway never panic Verify, and only
// the registration that was signed verifies.
func FuzzRegistrationVerify(f *testing.F) {
	p := newPKI(f)
	sr, err := api.SignRegistration(api.Registration{ID: alice.String(), Recipients: []string{"age1x"}}, p.alice.PrivateKey, p.alice.Certificates)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(sr)
	f.Add(good)
	f.Add([]byte(`{"payload":"","signature":"","chain":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var x api.SignedRegistration
		if json.Unmarshal(b, &x) != nil {
			return
		}
		if _, _, err := x.Verify(p.set); err == nil && x.Hash() != sr.Hash() {
			t.Fatalf("a registration nobody signed verifies: %s", b)
		}
	})
}
