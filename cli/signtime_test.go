package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestReceiveAfterSignerSVIDExpired: a 20-second SVID signs a send; after it
// expired, the transfer is still received and its signature verified, judged
// at the time the gateway accepted it.
func TestReceiveAfterSignerSVIDExpired(t *testing.T) {
	env, alice, team := setup(t)
	ca, err := certs.LoadCA(filepath.Join(env.PKI, "harbor-law.example"))
	if err != nil {
		t.Fatal(err)
	}
	folder := caseFolder(t)
	var (
		id       string
		notAfter time.Time
	)
	// A send on a slow machine may outlast a 20-second SVID; then mint a
	// fresh one and send again (the SVID's expiry is the point, not speed).
	for attempt := 1; id == ""; attempt++ {
		svid, err := ca.MintSVID(spiffeid.RequireFromString(gatewaytest.Alice), certs.SVIDOptions{TTL: 20 * time.Second, NotBefore: time.Now().Add(-time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if err := writeSVID(env, svid); err != nil {
			t.Fatal(err)
		}
		notAfter = svid.Certificates[0].NotAfter
		code, out, errOut := lex(t, alice, "send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2025-001", folder)
		switch {
		case code == 0:
			var sent struct{ ID string }
			if err := json.Unmarshal([]byte(out), &sent); err != nil || sent.ID == "" {
				t.Fatalf("send printed %q: %v", out, err)
			}
			id = sent.ID
		case attempt < 5 && time.Now().After(notAfter):
			t.Logf("send %d outlasted its 20-second SVID; again with a fresh one: %s", attempt, errOut)
		default:
			t.Fatalf("send: exit %d\n%s", code, errOut)
		}
	}
	<-time.After(time.Until(notAfter) + time.Second) // the signer's SVID expires
	if code, _, errOut := lex(t, alice, "inbox"); code == 0 {
		t.Fatalf("alice's SVID expired at %s but the gateway still accepted it: %s", notAfter, errOut)
	}
	dest := filepath.Join(t.TempDir(), "received")
	out := mustLex(t, team, "receive", id, "-o", dest, "--ack")
	want := "signed by " + gatewaytest.Alice + " with a certificate valid at signing time, " + time.Now().UTC().Format("2006-")
	if !strings.Contains(out, want) || !strings.Contains(out, "(signature verified)") {
		t.Errorf("receive printed %q, want %q", out, want)
	}
}

func writeSVID(env *gatewaytest.Env, svid *x509svid.SVID) error {
	cert, key := env.SVIDFiles(gatewaytest.Alice)
	return certs.WriteSVID(cert, key, svid)
}
