package api_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
)

// FuzzVerifyMutation takes a manifest alice signed and changes it the way a
// gateway or a network in the middle could: a byte of the payload, the signature
// or a certificate flipped, inserted or cut, a certificate dropped or added, the
// chain swapped for a rogue CA's SVID with the same SPIFFE ID. Verify accepts the
// result only if its payload, signature and leaf certificate are byte for byte
// the signed manifest's, and then returns alice and the manifest she signed.
func FuzzVerifyMutation(f *testing.F) {
	p := newPKI(f)
	good, err := api.Sign(manifest(), p.alice.PrivateKey, p.alice.Certificates)
	if err != nil {
		f.Fatal(err)
	}
	want, _, err := good.Verify(p.set, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, part uint8, pos uint16, val byte, op uint8) {
		sm := api.SignedManifest{Payload: bytes.Clone(good.Payload), Signature: bytes.Clone(good.Signature)}
		for _, c := range good.Chain {
			sm.Chain = append(sm.Chain, bytes.Clone(c))
		}
		switch part % 5 {
		case 0:
			sm.Payload = mutate(sm.Payload, int(pos), val, op)
		case 1:
			sm.Signature = mutate(sm.Signature, int(pos), val, op)
		case 2:
			k := int(op>>2) % len(sm.Chain)
			sm.Chain[k] = mutate(sm.Chain[k], int(pos), val, op)
		case 3:
			if op%2 == 0 {
				sm.Chain = sm.Chain[:len(sm.Chain)-1]
			} else {
				sm.Chain = append(sm.Chain, p.other.Certificates[0].Raw)
			}
		case 4:
			sm.Chain = nil
			for _, c := range p.other.Certificates {
				sm.Chain = append(sm.Chain, c.Raw)
			}
		}
		m, id, err := sm.Verify(p.set, time.Now())
		if err != nil {
			return
		}
		// Certificates after the leaf are only candidates for the path to the bundle:
		// an extra one nobody needs is ignored, so only the leaf must be the same.
		same := bytes.Equal(sm.Payload, good.Payload) && bytes.Equal(sm.Signature, good.Signature) &&
			bytes.Equal(sm.Chain[0], good.Chain[0])
		if !same || id != alice || !reflect.DeepEqual(m, want) {
			t.Fatalf("Verify accepted a changed manifest (part %d): signer %s, payload %q", part%5, id, sm.Payload)
		}
	})
}

// mutate flips (op%4 == 0), inserts (1), cuts (2) or overwrites (3) the byte at
// pos modulo len(b).
func mutate(b []byte, pos int, val byte, op uint8) []byte {
	if len(b) == 0 {
		return append(b, val)
	}
	i := pos % len(b)
	switch op % 4 {
	case 0:
		b[i] ^= val
	case 1:
		b = slices.Insert(b, i, val)
	case 2:
		b = slices.Delete(b, i, i+1)
	default:
		b[i] = val
	}
	return b
}

// FuzzValidate: a manifest payload that decodes and validates names every party
// by the canonical spelling of its SPIFFE ID (so comparing strings is comparing
// identities), names no recipient twice, and encodes and decodes to itself.
func FuzzValidate(f *testing.F) {
	good, _ := json.Marshal(validManifest())
	f.Add(good)
	f.Fuzz(func(t *testing.T, payload []byte) {
		sm := api.SignedManifest{Payload: payload}
		m, err := sm.Decode()
		if err != nil || m.Validate() != nil {
			return
		}
		ids := append([]string{m.Sender}, m.Recipients...)
		if m.SealedBy != "" {
			ids = append(ids, m.SealedBy)
		}
		for _, s := range ids {
			if id, err := spiffeid.FromString(s); err != nil || id.String() != s {
				t.Fatalf("valid manifest names %q, which is not a canonical SPIFFE ID (%v)", s, err)
			}
		}
		if len(slices.Compact(slices.Sorted(slices.Values(m.Recipients)))) != len(m.Recipients) {
			t.Fatalf("valid manifest names a recipient twice: %q", m.Recipients)
		}
		// Encoding is a fixed point and keeps the manifest valid (an empty list and
		// a missing one are the same manifest: omitempty drops both).
		again, _ := json.Marshal(m)
		var back api.Manifest
		if err := json.Unmarshal(again, &back); err != nil || back.Validate() != nil {
			t.Fatalf("valid manifest %s re-encoded as %s is not valid: %v, %v", payload, again, err, back.Validate())
		}
		if third, _ := json.Marshal(back); !bytes.Equal(third, again) {
			t.Fatalf("valid manifest %s encodes as %s, then as %s", payload, again, third)
		}
	})
}

func validManifest() api.Manifest {
	m := manifest()
	m.Version, m.Created, m.Nonce = api.ManifestVersion, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), "00112233445566778899aabbccddeeff"
	return m
}
