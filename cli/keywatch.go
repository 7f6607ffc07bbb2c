package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
)

// Owner-signed keys (issue 16): lex register signs every registration with
// the SVID key; lex send checks each recipient's before it encrypts a byte;
// lex keys --watch shows the owner every registration under its ID since
// the last one it saw, and says loudly when one was not made with its key.

// ErrNotOwnerSigned is wrapped by the error of lex send for a recipient whose
// keys were not registered by that recipient.
var ErrNotOwnerSigned = errors.New("the keys were not registered by their owner")

// checkOwnerSigned refuses keys whose registration was not signed by the
// recipient itself (or by the gateway, for a custodial account, which it says).
func (c *Client) checkOwnerSigned(e *env, id spiffeid.ID, kr *api.KeysResponse) error {
	if kr.Registration == nil {
		return fmt.Errorf("%w: %s's keys carry no signed registration: ask them to run \"lex register\" again (nothing was sent)", ErrNotOwnerSigned, id)
	}
	custodial, err := kr.Registration.OwnerSigned(c.ids, id.String(), c.gatewayID.String(), kr.Recipients)
	if err != nil {
		return fmt.Errorf("%w: %s: %v (nothing was sent)", ErrNotOwnerSigned, id, err)
	}
	if custodial {
		fmt.Fprintf(e.stderr, "note: %s is a custodial account: the gateway holds its key and signed its registration\n", id)
	}
	return nil
}

// runKeysWatch lists the key registrations under the caller's own ID since
// the last run (the log's public entries, verified with the tree), and
// fails loudly when one was not signed by the caller's own SVID.
func runKeysWatch(e *env, jsonOut bool) error {
	cfg, c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if c.log == nil {
		_, err := cfg.logVerifier()
		return err
	}
	me := c.ID().String()
	mark := filepath.Join(cfg.CacheDir, "log", "keys-watch-"+strings.NewReplacer("/", "_", ":", "_").Replace(me))
	after := int64(-1)
	if b, err := os.ReadFile(mark); err == nil {
		after, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	var bad, seen int
	last := after
	_, err = audit.VerifyLog(e.ctx, c.log.f, c.log.cp, func(i uint64, lf audit.Leaf) error {
		ev := lf.Public
		if int64(i) <= after || ev == nil || ev.Kind != audit.KindKeyRegistration || ev.Actor != me {
			return nil
		}
		seen++
		last = int64(i)
		verdict := "signed by you"
		var sr api.SignedRegistration
		switch {
		case len(ev.Registration) == 0:
			verdict, bad = "NOT MADE WITH YOUR KEY: no signed registration", bad+1
		case json.Unmarshal(ev.Registration, &sr) != nil:
			verdict, bad = "NOT MADE WITH YOUR KEY: the registration does not decode", bad+1
		default:
			r, signer, err := sr.Verify(c.ids)
			switch {
			case err != nil:
				verdict, bad = "NOT MADE WITH YOUR KEY: "+err.Error(), bad+1
			case signer.String() != me && r.Custodial && signer == c.gatewayID:
				verdict, bad = "NOT MADE WITH YOUR KEY: signed by the gateway as a custodial account", bad+1
			case signer.String() != me || r.ID != me:
				verdict, bad = "NOT MADE WITH YOUR KEY: signed by "+signer.String(), bad+1
			}
		}
		fps := make([]string, len(ev.Keys))
		for j, k := range ev.Keys {
			fps[j] = keyFingerprint(k)
		}
		fmt.Fprintf(e.stdout, "entry %d  %s  %s  %s\n", i, ts(ev.Time), strings.Join(fps, " "), verdict)
		return nil
	})
	if err != nil {
		return fmt.Errorf("THE AUDIT LOG DOES NOT VERIFY: %w", err)
	}
	if seen == 0 {
		fmt.Fprintf(e.stdout, "no new key registration under %s\n", me)
	}
	if err := os.MkdirAll(filepath.Dir(mark), 0o700); err == nil {
		os.WriteFile(mark, []byte(strconv.FormatInt(last, 10)+"\n"), 0o600)
	}
	if bad > 0 {
		return fmt.Errorf("WARNING: %d key registration(s) under %s were NOT made with your key: senders may be encrypting to someone else's keys; tell your security team and run \"lex register\" again", bad, me)
	}
	return nil
}
