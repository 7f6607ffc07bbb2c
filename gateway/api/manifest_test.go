package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/api"
)

var (
	harbor = spiffeid.RequireTrustDomainFromString("harbor-law.example")
	manila = spiffeid.RequireTrustDomainFromString("manila-lpo.example")
	alice  = spiffeid.RequireFromString("spiffe://harbor-law.example/paralegal/alice")
	team   = spiffeid.RequireFromString("spiffe://manila-lpo.example/site/review-team")
)

type pki struct {
	set   *x509bundle.Set
	alice *x509svid.SVID
	team  *x509svid.SVID
	other *x509svid.SVID // same ID as alice, from a CA nobody trusts
}

func newPKI(t testing.TB) pki {
	t.Helper()
	hca, err := certs.NewCA(harbor, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mca, err := certs.NewCA(manila, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := certs.NewCA(harbor, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := pki{set: x509bundle.NewSet(hca.Bundle(), mca.Bundle())}
	mint := func(ca *certs.CA, id spiffeid.ID) *x509svid.SVID {
		s, err := ca.MintSVID(id, certs.SVIDOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	p.alice, p.team, p.other = mint(hca, alice), mint(mca, team), mint(rogue, alice)
	return p
}

func manifest() api.Manifest {
	return api.Manifest{
		Sender: alice.String(), Recipients: []string{team.String()}, Matter: "M-2026-001",
		Labels: []string{"privileged"}, Regions: []string{"DE"}, FileCount: 3, PlaintextSize: 1000,
		CiphertextSize: 1200, CiphertextSHA256: strings.Repeat("ab", 32),
	}
}

func TestSignVerify(t *testing.T) {
	p := newPKI(t)
	sm, err := api.Sign(manifest(), p.alice.PrivateKey, p.alice.Certificates)
	if err != nil {
		t.Fatal(err)
	}
	m, id, err := sm.Verify(p.set, time.Now())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if id != alice || m.Matter != "M-2026-001" || m.Nonce == "" || m.Version != 1 {
		t.Fatalf("got id %s manifest %+v", id, m)
	}
	// Round trip through JSON keeps it verifiable and keeps its hash.
	b, _ := json.Marshal(sm)
	var back api.SignedManifest
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Hash() != sm.Hash() {
		t.Fatal("hash changed through JSON")
	}
	if _, _, err := back.Verify(p.set, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	p := newPKI(t)
	good, err := api.Sign(manifest(), p.alice.PrivateKey, p.alice.Certificates)
	if err != nil {
		t.Fatal(err)
	}
	resign := func(edit func(*api.Manifest), s *x509svid.SVID) *api.SignedManifest {
		m, _ := good.Decode()
		edit(&m)
		payload, _ := json.Marshal(m)
		// Sign validates; build by hand to get invalid manifests signed.
		sm, err := api.Sign(m, s.PrivateKey, s.Certificates)
		if err != nil {
			return &api.SignedManifest{Payload: payload, Signature: good.Signature, Chain: good.Chain}
		}
		return sm
	}
	cases := []struct {
		name string
		sm   *api.SignedManifest
		want string
	}{
		{"payload byte flipped", &api.SignedManifest{Payload: bytes.Replace(good.Payload, []byte("M-2026-001"), []byte("M-2026-002"), 1), Signature: good.Signature, Chain: good.Chain}, "signature does not verify"},
		{"signature flipped", &api.SignedManifest{Payload: good.Payload, Signature: flip(good.Signature), Chain: good.Chain}, "signature does not verify"},
		{"no chain", &api.SignedManifest{Payload: good.Payload, Signature: good.Signature}, "signer chain"},
		{"untrusted CA", resign(func(*api.Manifest) {}, p.other), "signer SVID"},
		{"sender is someone else", resign(func(m *api.Manifest) { m.Sender = team.String() }, p.alice), "signed by"},
		{"recipient swapped after signing", &api.SignedManifest{Payload: bytes.Replace(good.Payload, []byte("review-team"), []byte("review-tean"), 1), Signature: good.Signature, Chain: good.Chain}, "signature does not verify"},
		{"garbage payload", &api.SignedManifest{Payload: []byte("{"), Signature: good.Signature, Chain: good.Chain}, "payload"},
		{"bad hash", resign(func(m *api.Manifest) { m.CiphertextSHA256 = "xyz" }, p.alice), "ciphertext_sha256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := c.sm.Verify(p.set, time.Now())
			if err == nil || !errors.Is(err, api.ErrBadManifest) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Verify = %v, want ErrBadManifest containing %q", err, c.want)
			}
		})
	}
	if _, _, err := good.Verify(p.set, time.Now().Add(48*time.Hour)); err == nil {
		t.Fatal("Verify accepted an expired signer")
	}
}

func flip(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)/2] ^= 1
	return c
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*api.Manifest)
		want string
	}{
		{"no recipients", func(m *api.Manifest) { m.Recipients = nil }, "0 recipients"},
		{"duplicate recipient", func(m *api.Manifest) { m.Recipients = []string{team.String(), team.String()} }, "named twice"},
		{"bad recipient", func(m *api.Manifest) { m.Recipients = []string{"spiffe://x/../y"} }, "recipient"},
		{"bad matter", func(m *api.Manifest) { m.Matter = "../etc" }, "matter"},
		{"bad label", func(m *api.Manifest) { m.Labels = []string{"Privileged Stuff"} }, "label"},
		{"bad region", func(m *api.Manifest) { m.Regions = []string{"Germany"} }, "region"},
		{"empty ciphertext", func(m *api.Manifest) { m.CiphertextSize = 0 }, "empty ciphertext"},
		{"version", func(m *api.Manifest) { m.Version = 2 }, "version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := manifest()
			m.Version, m.Created = 1, time.Now()
			c.edit(&m)
			if err := m.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want %q", err, c.want)
			}
		})
	}
}

// FuzzVerify feeds arbitrary signed-manifest JSON to the parser and verifier: it
// must never panic, and anything it accepts must be signed by the trusted sender.
func FuzzVerify(f *testing.F) {
	p := newPKI(f)
	good, err := api.Sign(manifest(), p.alice.PrivateKey, p.alice.Certificates)
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := json.Marshal(good)
	f.Add(seed)
	f.Add([]byte(`{"payload":"e30=","signature":"","chain":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var sm api.SignedManifest
		if json.Unmarshal(b, &sm) != nil {
			return
		}
		m, id, err := sm.Verify(p.set, time.Now())
		if err != nil {
			return
		}
		if id != alice || m.Sender != alice.String() || !bytes.Equal(sm.Payload, good.Payload) {
			t.Fatalf("accepted a manifest that was not the signed one: %s", sm.Payload)
		}
	})
}
