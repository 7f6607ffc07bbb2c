package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/store"
)

// injectRegistration plays a gateway that registers keys of its own making
// for id: with the gateway stopped, it writes them into the store and the
// audit log directly, with reg as their signed registration (nil: none).
func injectRegistration(t *testing.T, env *gatewaytest.Env, id string, recips []string, reg *api.SignedRegistration) {
	t.Helper()
	env.Stop()
	ctx := t.Context()
	st, err := store.Open(ctx, env.Config.Store)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, audit.Config{Dir: env.Gateway.AuditDir(), Origin: "harbor-law.example/lexgate-audit"})
	if err != nil {
		t.Fatal(err)
	}
	var regJSON []byte
	if reg != nil {
		regJSON, _ = json.Marshal(reg)
	}
	if err := st.PutKeys(ctx, id, recips, time.Now()); err != nil {
		t.Fatal(err)
	}
	if regJSON != nil {
		err = st.PutKeyRegistration(ctx, id, regJSON)
	} else {
		err = st.DeleteKeyRegistration(ctx, id)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, audit.Event{Kind: audit.KindKeyRegistration, Actor: id, Action: "register_key", Keys: recips,
		Decision: &audit.Decision{Allow: true}, Registration: regJSON}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	st.Close()
	env.Restart()
}

// TestOwnerSignedKeys: lex register signs; lex send refuses, before it
// encrypts a byte, keys whose registration does not verify, is signed by
// another identity, by the gateway for an account that is not custodial,
// or is missing; the owner's lex keys --watch reports each registration it
// did not make, loudly, and is quiet when nothing changed.
func TestOwnerSignedKeys(t *testing.T) {
	env, alice, team := setup(t)
	env.WaitPublished()
	out := mustLex(t, team, "keys", "--watch")
	if !strings.Contains(out, "signed by you") || strings.Contains(out, "NOT MADE") {
		t.Errorf("first watch: %q", out)
	}
	if out := mustLex(t, team, "keys", "--watch"); !strings.Contains(out, "no new key registration") {
		t.Errorf("second watch: %q", out)
	}
	sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))

	rogue, _ := age.GenerateHybridIdentity()
	recips := []string{rogue.Recipient().String()}
	sign := func(signer string, r api.Registration) *api.SignedRegistration {
		svid := env.LoadSVID(signer)
		sr, err := api.SignRegistration(r, svid.PrivateKey, svid.Certificates)
		if err != nil {
			t.Fatal(err)
		}
		return sr
	}
	badSig := sign(gatewaytest.Team, api.Registration{ID: gatewaytest.Team, Recipients: recips})
	badSig.Signature[5] ^= 1
	for _, c := range []struct {
		name, want, watch string
		reg               *api.SignedRegistration
	}{
		{"signature does not verify", "signature does not verify", "NOT MADE WITH YOUR KEY: registration: the signature does not verify", badSig},
		{"signed by another identity", "signed by " + gatewaytest.Alice, "NOT MADE WITH YOUR KEY: signed by " + gatewaytest.Alice,
			sign(gatewaytest.Alice, api.Registration{ID: gatewaytest.Team, Recipients: recips})},
		{"signed by the gateway, not custodial", "signed by " + gatewaytest.GatewayID, "NOT MADE WITH YOUR KEY: signed by " + gatewaytest.GatewayID,
			sign(gatewaytest.GatewayID, api.Registration{ID: gatewaytest.Team, Recipients: recips})},
		{"unsigned", "carry no signed registration", "NOT MADE WITH YOUR KEY: no signed registration", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			injectRegistration(t, env, gatewaytest.Team, recips, c.reg)
			refusesToSend(t, env, alice, c.want)
			code, out, errOut := lex(t, team, "keys", "--watch")
			if code == 0 || !strings.Contains(out, c.watch) || !strings.Contains(errOut, "NOT made with your key") {
				t.Errorf("watch: exit %d\nstdout %q\nstderr %q\nwant %q", code, out, errOut, c.watch)
			}
		})
	}
	// Registering again with lex restores sending.
	mustLex(t, team, "register")
	sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	if code, out, _ := lex(t, team, "keys", "--watch"); code != 0 || !strings.Contains(out, "signed by you") {
		t.Errorf("watch after registering again: exit %d %q", code, out)
	}
}
