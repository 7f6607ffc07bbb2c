package battery_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestIntegrityBitFlipQuarantined: a bit flipped in the stored ciphertext is
// caught by the gateway before a byte is delivered (it re-hashes the spool file
// against the signed manifest at every delivery from byte 0, ranged or not;
// lex receive starts there); the transfer is quarantined for
// good, its bytes deleted, the quarantine audited and no delivery audited. lex
// receive says so and writes nothing.
func TestIntegrityBitFlipQuarantined(t *testing.T) {
	env, alice, team := lexSetup(t)
	defer memoryNow(t, env).back(t)
	id := lexSend(t, alice)
	flipSpool(t, env, id)
	spool := filepath.Join(env.Config.Store.Dir, "spool", id+".age")
	raw := env.NewClient(gatewaytest.Team, false).In(t)
	st, body, _ := raw.Do(http.MethodGet, api.PathTransfer+id+"/content", nil, map[string]string{"Range": "bytes=0-99"})
	if st != http.StatusUnprocessableEntity || !strings.Contains(string(body), api.CodeHashMismatch) || !strings.Contains(string(body), "quarantined") {
		t.Fatalf("download of a flipped spool file: %d %s, want 422 hash_mismatch, quarantined", st, body)
	}
	if s := env.StoreStats(); s.Quarantined != 1 || s.Ready != 0 {
		t.Errorf("store after the flip was caught: %+v, want the transfer quarantined", s)
	}
	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Errorf("the quarantined ciphertext is still in the spool: %v", err)
	}
	dest := filepath.Join(t.TempDir(), "in")
	code, _, errOut := lexRun(t, team, "receive", id, "-o", dest)
	if code != cli.ExitError || !containsAny(errOut, "quarantined", "not found", "hash") {
		t.Errorf("lex receive of a quarantined transfer: exit %d, stderr %q", code, errOut)
	}
	assertEmpty(t, dest)
	if quarantines, deliveries := auditCounts(env, id); quarantines != 1 || deliveries != 0 {
		t.Errorf("audit: %d quarantines, %d deliveries; want 1 and 0", quarantines, deliveries)
	}
}

// TestIntegrityGatewaySubstitution: a gateway that replaces a stored file by
// another valid age file addressed to the recipient, and rewrites everything it
// holds to match (spool, ciphertext hash and size, manifest payload and hash),
// still cannot sign as the sender: lex receive verifies the manifest signature
// against the sender's trust bundle before decrypting and refuses, writing
// nothing. A forged signature on the original manifest is refused the same way.
func TestIntegrityGatewaySubstitution(t *testing.T) {
	env, alice, team := lexSetup(t)
	defer memoryNow(t, env).back(t)
	raw := env.NewClient(gatewaytest.Alice, false).In(t)
	dest := filepath.Join(t.TempDir(), "in")
	db, err := sql.Open("sqlite", filepath.Join(env.Config.Store.Dir, "lexgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stored := func(id string) api.SignedManifest {
		var b []byte
		if err := db.QueryRow(`SELECT manifest FROM transfers WHERE id = ?`, id).Scan(&b); err != nil {
			t.Fatal(err)
		}
		var sm api.SignedManifest
		if err := json.Unmarshal(b, &sm); err != nil {
			t.Fatal(err)
		}
		return sm
	}
	rewrite := func(id string, sm api.SignedManifest, m api.Manifest) {
		b, _ := json.Marshal(sm)
		if _, err := db.Exec(`UPDATE transfers SET manifest = ?, manifest_hash = ?, ciphertext_sha256 = ?, ciphertext_size = ? WHERE id = ?`,
			b, sm.Hash(), m.CiphertextSHA256, m.CiphertextSize, id); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("substituted file", func(t *testing.T) {
		id := lexSend(t, alice)
		_, b := raw.JSON(http.MethodGet, api.PathKeys+"?id="+gatewaytest.Team, nil)
		var keys api.KeysResponse
		json.Unmarshal(b, &keys)
		recips, err := age.ParseRecipients(strings.NewReader(strings.Join(keys.Recipients, "\n")))
		if err != nil {
			t.Fatal(err)
		}
		other := gatewaytest.Encrypt(t, []byte("a file the gateway made"), recips...)
		if err := os.WriteFile(filepath.Join(env.Config.Store.Dir, "spool", id+".age"), other, 0o600); err != nil {
			t.Fatal(err)
		}
		sm := stored(id)
		m, err := sm.Decode()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(other)
		m.CiphertextSHA256, m.CiphertextSize = hex.EncodeToString(sum[:]), int64(len(other))
		sm.Payload, _ = json.Marshal(m) // the signature still covers the old payload
		rewrite(id, sm, m)
		code, _, errOut := lexRun(t, team, "receive", id, "-o", dest)
		if code != cli.ExitError || !strings.Contains(errOut, "signature") {
			t.Errorf("substituted file: exit %d, stderr %q; want a refused signature", code, errOut)
		}
		assertEmpty(t, dest)
	})
	t.Run("forged signature", func(t *testing.T) {
		id := lexSend(t, alice)
		sm := stored(id)
		m, _ := sm.Decode()
		sm.Signature[len(sm.Signature)/2] ^= 0x01
		rewrite(id, sm, m)
		code, _, errOut := lexRun(t, team, "receive", id, "-o", dest)
		if code != cli.ExitError || !strings.Contains(errOut, "signature") {
			t.Errorf("forged signature: exit %d, stderr %q", code, errOut)
		}
		assertEmpty(t, dest)
	})
}

// lexSetup starts a gateway and gives alice and the review team lex configs
// with registered keys.
func lexSetup(t *testing.T, opts ...gatewaytest.Option) (env *gatewaytest.Env, alice, team string) {
	env = gatewaytest.Start(t, opts...)
	alice, team = env.ClientConfig(gatewaytest.Alice), env.ClientConfig(gatewaytest.Team)
	for _, c := range []string{alice, team} {
		lexMust(t, c, "keygen")
		lexMust(t, c, "register")
	}
	return env, alice, team
}

func lexRun(t *testing.T, config string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), append([]string{"--config", config}, args...), nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func lexMust(t *testing.T, config string, args ...string) string {
	t.Helper()
	code, out, errOut := lexRun(t, config, args...)
	if code != 0 {
		t.Fatalf("lex %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// lexSend sends a small case folder from config to the team and returns the transfer id.
func lexSend(t *testing.T, config string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "HL-2026-0042")
	os.MkdirAll(filepath.Join(dir, "depositions"), 0o755)
	os.WriteFile(filepath.Join(dir, "depositions", "smith.txt"), bytes.Repeat([]byte("Q. Where were you? A. At home.\n"), 4000), 0o644)
	out := lexMust(t, config, "send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2026-0042", dir)
	var res struct{ ID string }
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ID == "" {
		t.Fatalf("send printed %q: %v", out, err)
	}
	return res.ID
}

// assertEmpty fails if dir holds anything.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		t.Errorf("%s holds %d entries after a refused receive", dir, len(ents))
	}
}

// flipSpool flips one bit in the middle of transfer id's stored ciphertext.
func flipSpool(t *testing.T, env *gatewaytest.Env, id string) {
	t.Helper()
	spool := filepath.Join(env.Config.Store.Dir, "spool", id+".age")
	b, err := os.ReadFile(spool)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(spool, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// auditCounts counts transfer id's quarantine and delivery entries.
func auditCounts(env *gatewaytest.Env, id string) (quarantines, deliveries int) {
	for _, ev := range env.AuditEvents() {
		switch {
		case ev.Transfer != id:
		case ev.Kind == audit.KindQuarantined:
			quarantines++
		case ev.Kind == audit.KindDelivery:
			deliveries++
		}
	}
	return quarantines, deliveries
}

// TestIntegrityBitFlipReportedByLex: lex receive tells the gateway it checks
// the ciphertext itself (api.HeaderIntegrity), so the gateway serves it
// unhashed; lex finds the flipped bit against the signed manifest, writes
// nothing, and reports it; the gateway checks its stored copy, quarantines the
// transfer and audits the quarantine once, and lex says the stored copy is
// damaged. A second receive is refused.
func TestIntegrityBitFlipReportedByLex(t *testing.T) {
	env, alice, team := lexSetup(t)
	defer memoryNow(t, env).back(t)
	id := lexSend(t, alice)
	flipSpool(t, env, id)

	dest := filepath.Join(t.TempDir(), "in")
	code, _, errOut := lexRun(t, team, "receive", id, "-o", dest)
	if code != cli.ExitError || !strings.Contains(errOut, "does not match the signed manifest") || !strings.Contains(errOut, "damaged") || !strings.Contains(errOut, "quarantined") {
		t.Fatalf("lex receive of a flipped ciphertext: exit %d, stderr %q; want the mismatch, confirmed damaged and quarantined by the gateway", code, errOut)
	}
	assertEmpty(t, dest)
	if s := env.StoreStats(); s.Quarantined != 1 || s.Ready != 0 {
		t.Errorf("store after the report: %+v, want the transfer quarantined", s)
	}
	if q, _ := auditCounts(env, id); q != 1 {
		t.Errorf("audit: %d quarantine entries for %s, want 1", q, id)
	}
	code, _, errOut = lexRun(t, team, "receive", id, "-o", dest)
	if code != cli.ExitError || !containsAny(errOut, "quarantined", "not ready", "not found") {
		t.Errorf("second lex receive: exit %d, stderr %q", code, errOut)
	}
	assertEmpty(t, dest)
}

// TestIntegrityReportChecked: a report is not evidence. A recipient reporting
// a mismatch of an intact transfer gets "intact" and quarantines nothing; a
// stranger's report is a 404 like any of its requests about the transfer; an
// unknown value of api.HeaderIntegrity is refused. A download that says the
// recipient checks is served whole even when damaged (nothing is held back:
// lex keeps nothing unless it matches), and the report that follows
// quarantines it.
func TestIntegrityReportChecked(t *testing.T) {
	env, alice, _ := lexSetup(t)
	id := lexSend(t, alice)
	team := env.NewClient(gatewaytest.Team, false).In(t)
	stranger := env.NewClient(gatewaytest.DMS, false).In(t)
	report := api.PathTransfer + id + api.PathIntegrityReport
	content := api.PathTransfer + id + "/content"
	bogus := api.IntegrityReport{Size: 1, SHA256: strings.Repeat("0", 64)}

	st, body := team.JSON(http.MethodPost, report, bogus)
	var v api.IntegrityVerdict
	if st != http.StatusOK || json.Unmarshal(body, &v) != nil || v.Stored != "intact" {
		t.Fatalf("report of an intact transfer: %d %s, want 200 intact", st, body)
	}
	if st, body := stranger.JSON(http.MethodPost, report, bogus); st != http.StatusNotFound {
		t.Errorf("a stranger's report: %d %s, want 404", st, body)
	}
	if s := env.StoreStats(); s.Quarantined != 0 {
		t.Fatalf("false reports quarantined a transfer: %+v", s)
	}
	if st, body, _ := team.Do(http.MethodGet, content, nil, map[string]string{api.HeaderIntegrity: "whoever"}); st != http.StatusBadRequest || !strings.Contains(string(body), api.HeaderIntegrity) {
		t.Errorf("download with an unknown checker: %d %s, want 400 naming the header", st, body)
	}

	st, intact, _ := team.Do(http.MethodGet, content, nil, map[string]string{api.HeaderIntegrity: api.IntegrityRecipient})
	if st != http.StatusOK {
		t.Fatalf("download: %d", st)
	}
	flipSpool(t, env, id)
	st, got, _ := team.Do(http.MethodGet, content, nil, map[string]string{api.HeaderIntegrity: api.IntegrityRecipient})
	if st != http.StatusOK || len(got) != len(intact) || bytes.Equal(got, intact) {
		t.Fatalf("recipient-checked download of a damaged file: %d, %d of %d bytes (equal: %v); want all of it, damaged", st, len(got), len(intact), bytes.Equal(got, intact))
	}
	sum := sha256.Sum256(got)
	st, body = team.JSON(http.MethodPost, report, api.IntegrityReport{Size: int64(len(got)), SHA256: hex.EncodeToString(sum[:])})
	if st != http.StatusUnprocessableEntity || !strings.Contains(string(body), api.CodeHashMismatch) || !strings.Contains(string(body), "quarantined") {
		t.Fatalf("report of a damaged transfer: %d %s, want 422 hash_mismatch, quarantined", st, body)
	}
	if s := env.StoreStats(); s.Quarantined != 1 {
		t.Errorf("store after the report: %+v, want the transfer quarantined", s)
	}
	if q, _ := auditCounts(env, id); q != 1 {
		t.Errorf("audit: %d quarantine entries, want 1", q)
	}
	if st, body := team.JSON(http.MethodPost, report, bogus); st != http.StatusUnprocessableEntity {
		t.Errorf("report after the quarantine: %d %s, want 422", st, body)
	}
}

// TestIntegrityReportsBounded: reports cannot make the gateway read a stored
// copy without end. The same report within a minute of an intact verdict is
// answered by it, without a check; at most ten checks of a transfer an hour
// follow reports, and the next report is refused (400) saying when the
// gateway checks again.
func TestIntegrityReportsBounded(t *testing.T) {
	env, alice, _ := lexSetup(t)
	id := lexSend(t, alice)
	team := env.NewClient(gatewaytest.Team, false).In(t)
	report := api.PathTransfer + id + api.PathIntegrityReport
	bogus := func(i int) api.IntegrityReport {
		return api.IntegrityReport{Size: int64(i + 1), SHA256: strings.Repeat("0", 63) + strconv.Itoa(i%10)}
	}
	for i := range 10 {
		if st, body := team.JSON(http.MethodPost, report, bogus(i)); st != http.StatusOK {
			t.Fatalf("report %d: %d %s, want 200 intact", i+1, st, body)
		}
		if i == 0 {
			for range 5 { // answered by the first verdict: no check counted
				if st, body := team.JSON(http.MethodPost, report, bogus(0)); st != http.StatusOK {
					t.Fatalf("the first report repeated: %d %s, want 200 intact", st, body)
				}
			}
		}
	}
	st, body := team.JSON(http.MethodPost, report, bogus(10))
	if st != http.StatusBadRequest || !strings.Contains(string(body), "checked 10 times in the last hour") {
		t.Fatalf("an eleventh report of other bytes: %d %s, want 400 naming the hourly bound", st, body)
	}
	if s := env.StoreStats(); s.Quarantined != 0 {
		t.Fatalf("reports of an intact transfer quarantined it: %+v", s)
	}
}
