package api_test

import (
	"errors"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/api"
)

// TestVerifyManifestAtSigningTime judges a signature at the time the gateway
// accepted it (the transfer's Created, or Completed for a sealed streamed
// transfer), never at the time someone checks it: a short-lived SVID that
// expired since still vouches for what it signed, and one that was not valid
// when the gateway accepted the signature never does.
func TestVerifyManifestAtSigningTime(t *testing.T) {
	ca, err := certs.NewCA(harbor, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bundles := x509bundle.NewSet(ca.Bundle())
	t0 := time.Now().Add(-40 * time.Second).Truncate(time.Second) // the CA is backdated one minute
	// A 20-second SVID, expired by now.
	short, err := ca.MintSVID(alice, certs.SVIDOptions{NotBefore: t0, NotAfter: t0.Add(20 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	sm, err := api.Sign(manifest(), short.PrivateKey, short.Certificates)
	if err != nil {
		t.Fatal(err)
	}
	tampered := *sm
	tampered.Signature = append([]byte(nil), sm.Signature...)
	tampered.Signature[len(tampered.Signature)/2] ^= 1
	for _, tc := range []struct {
		name               string
		sm                 api.SignedManifest
		created, completed time.Time
		wantAt             time.Time
		wantNotValid       bool // error wraps ErrSignerCertNotValid
		wantErr            bool
	}{
		{name: "accepted while valid, expired now", sm: *sm, created: t0.Add(5 * time.Second), completed: t0.Add(30 * time.Second), wantAt: t0.Add(5 * time.Second)},
		{name: "sealed while valid (streamed)", sm: *sm, created: t0.Add(-10 * time.Second), completed: t0.Add(15 * time.Second), wantAt: t0.Add(15 * time.Second)},
		{name: "accepted after expiry", sm: *sm, created: t0.Add(21 * time.Second), completed: t0.Add(30 * time.Second), wantNotValid: true, wantErr: true},
		{name: "accepted before valid", sm: *sm, created: t0.Add(-10 * time.Second), wantNotValid: true, wantErr: true},
		{name: "never accepted", sm: *sm, wantErr: true},
		{name: "bad signature", sm: tampered, created: t0.Add(5 * time.Second), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &api.Transfer{Manifest: tc.sm, Created: tc.created, Completed: tc.completed}
			m, id, at, err := tr.VerifyManifest(bundles)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("verified at %s, want an error", at)
				}
				if got := errors.Is(err, api.ErrSignerCertNotValid); got != tc.wantNotValid {
					t.Fatalf("error %v: wraps ErrSignerCertNotValid %v, want %v", err, got, tc.wantNotValid)
				}
				if !errors.Is(err, api.ErrBadManifest) {
					t.Errorf("error %v does not wrap ErrBadManifest", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyManifest: %v", err)
			}
			if id != alice || m.Sender != alice.String() || !at.Equal(tc.wantAt) {
				t.Fatalf("got %s, sender %s, at %s; want %s at %s", id, m.Sender, at, alice, tc.wantAt)
			}
		})
	}
	// Judged now, as a gateway accepting it would, the expired signature is refused.
	if _, _, err := sm.Verify(bundles, time.Now()); !errors.Is(err, api.ErrSignerCertNotValid) {
		t.Errorf("Verify now: %v, want ErrSignerCertNotValid", err)
	}
}
