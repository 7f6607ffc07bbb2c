package cli_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// Tampering with the audit log's files on disk, behind the gateway's back, is
// caught by lex: by the consistency check every command makes against the
// checkpoint it remembers, and by "lex audit verify".

// newestFile returns the newest regular file under dir.
func newestFile(t *testing.T, dir string) string {
	t.Helper()
	var best string
	var bestMod int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().UnixNano() >= bestMod {
			best, bestMod = p, fi.ModTime().UnixNano()
		}
		return nil
	})
	if best == "" {
		t.Fatalf("no file under %s", dir)
	}
	return best
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkpointSize is the size in the gateway's published checkpoint.
func checkpointSize(t *testing.T, env *gatewaytest.Env) int {
	n, err := strconv.Atoi(logSize(t, env))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// refusesToSend asserts that alice's send fails with want in its message.
func refusesToSend(t *testing.T, env *gatewaytest.Env, alice, want string) {
	t.Helper()
	before := len(env.SpoolFiles())
	code, _, errOut := lex(t, alice, "send", "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	if code == 0 || !strings.Contains(errOut, want) {
		t.Fatalf("send: exit %d, stderr %q; want %q", code, errOut, want)
	}
	if n := len(env.SpoolFiles()); n != before {
		t.Errorf("the refused send stored ciphertext (%d spool files, was %d)", n, before)
	}
}

func TestAuditTamperEntryTile(t *testing.T) {
	env, alice, _ := setup(t)
	sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	env.WaitPublished()
	mustLex(t, alice, "audit", "verify")
	bundle := newestFile(t, filepath.Join(env.Gateway.AuditDir(), "tile", "entries"))
	b, _ := os.ReadFile(bundle)
	if bytes.Contains(b, []byte("HL-2025-001")) {
		t.Fatalf("%s holds the matter in the clear", bundle)
	}
	i := bytes.LastIndex(b, []byte(`"}`)) - 1 // the last hex digit of the last commitment
	if b[i] == '0' {                          // another lowercase hex digit, so the commitment still parses
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	write(t, bundle, b)
	code, _, errOut := lex(t, alice, "audit", "verify")
	if code == 0 || !strings.Contains(errOut, "THE AUDIT LOG DOES NOT VERIFY") || !strings.Contains(errOut, "was altered") {
		t.Errorf("audit verify after editing %s: exit %d, stderr %q", bundle, code, errOut)
	}
}

// TestAuditTamperBody: a private entry's body kept beside the log, changed,
// no longer opens its commitment: lex audit verify says so.
func TestAuditTamperBody(t *testing.T) {
	env, alice, _ := setup(t)
	sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	env.WaitPublished()
	var changed int
	filepath.WalkDir(filepath.Join(env.Gateway.AuditDir(), "bodies"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("HL-2025-001")) {
				write(t, p, bytes.ReplaceAll(b, []byte("HL-2025-001"), []byte("HL-2025-666")))
				changed++
			}
		}
		return nil
	})
	if changed == 0 {
		t.Fatal("no body holds the matter")
	}
	code, _, errOut := lex(t, alice, "audit", "verify")
	if code == 0 || !strings.Contains(errOut, "THE AUDIT LOG DOES NOT VERIFY") || !strings.Contains(errOut, "body or its salt was altered") {
		t.Errorf("audit verify after editing %d bodies: exit %d, stderr %q", changed, code, errOut)
	}
}

func TestAuditTamperHashTile(t *testing.T) {
	env, alice, _ := setup(t)
	sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	env.WaitPublished()
	mustLex(t, alice, "audit", "verify") // lex remembers the checkpoint as it is now
	tile := newestFile(t, filepath.Join(env.Gateway.AuditDir(), "tile", "0"))
	b, _ := os.ReadFile(tile)
	b[0] ^= 0xff
	write(t, tile, b)
	code, _, errOut := lex(t, alice, "audit", "verify")
	// Had the checkpoint grown after lex last saw it, the broken tile fails
	// the consistency proof first ("WAS REWRITTEN"): tampering found either way.
	if code == 0 || !strings.Contains(errOut, "THE AUDIT LOG DOES NOT VERIFY") && !strings.Contains(errOut, "THE AUDIT LOG WAS REWRITTEN") {
		t.Errorf("audit verify after editing %s: exit %d, stderr %q", tile, code, errOut)
	}
}

func TestAuditTruncatedLog(t *testing.T) {
	env, alice, team := setup(t)
	env.WaitPublished()
	dir := env.Gateway.AuditDir()
	env.Stop()
	snapshot := filepath.Join(t.TempDir(), "audit")
	copyDir(t, dir, snapshot)
	env.Restart()
	id, _ := sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	mustLex(t, team, "receive", id, "-o", filepath.Join(t.TempDir(), "in"), "--ack")
	env.WaitPublished()
	mustLex(t, alice, "inbox") // remembers the grown log
	env.Stop()
	os.RemoveAll(dir)
	copyDir(t, snapshot, dir) // the last entries are gone
	env.Restart()
	code, _, errOut := lex(t, alice, "inbox")
	if code == 0 || !strings.Contains(errOut, "THE AUDIT LOG WAS TRUNCATED") {
		t.Errorf("inbox on a truncated log: exit %d, stderr %q", code, errOut)
	}
	refusesToSend(t, env, alice, "TRUNCATED")
}

func TestAuditRewrittenLog(t *testing.T) {
	env, alice, team := setup(t)
	sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	env.WaitPublished()
	mustLex(t, alice, "inbox")
	remembered := checkpointSize(t, env)
	env.Stop()
	os.RemoveAll(env.Gateway.AuditDir()) // a fresh tree, signed with the same key
	env.Restart()
	cfg, err := cli.LoadConfig(team)
	if err != nil {
		t.Fatal(err)
	}
	for checkpointSize(t, env) <= remembered { // the team's lex, told to forget, grows the new log
		os.RemoveAll(filepath.Join(cfg.CacheDir, "log"))
		mustLex(t, team, "inbox")
		env.WaitPublished()
	}
	code, _, errOut := lex(t, alice, "inbox")
	if code == 0 || !strings.Contains(errOut, "THE AUDIT LOG WAS REWRITTEN") {
		t.Errorf("inbox on a rewritten log: exit %d, stderr %q", code, errOut)
	}
	refusesToSend(t, env, alice, "REWRITTEN")
}

// TestKeyTransparency: a gateway that hands out another key than the logged
// registration (here: its key store edited behind its back) is caught by lex send.
func TestKeyTransparency(t *testing.T) {
	env, alice, team := setup(t)
	env.WaitPublished()
	sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	db, err := sql.Open("sqlite", filepath.Join(env.Config.Store.Dir, "lexgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var aliceKeys string
	if err := db.QueryRow(`SELECT recipients FROM keys WHERE id = ?`, gatewaytest.Alice).Scan(&aliceKeys); err != nil {
		t.Fatal(err)
	}
	var keys []string
	json.Unmarshal([]byte(aliceKeys), &keys)
	// The gateway now hands out alice's own key (one the attacker holds) as the team's.
	if _, err := db.Exec(`UPDATE keys SET recipients = ? WHERE id = ?`, aliceKeys, gatewaytest.Team); err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("alice has no keys")
	}
	refusesToSend(t, env, alice, "KEY TRANSPARENCY")
	// The team registers its key again, through the gateway and the log: sending works again.
	mustLex(t, team, "register")
	sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
}
