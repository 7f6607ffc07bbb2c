package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLexReceiveFailsOver: two replica processes on PostgreSQL, MariaDB and
// a shared spool; the review team's lex receive, given both addresses,
// downloads through the first, which is killed with SIGKILL mid-download:
// the same lex receive moves to the second, resumes from the ciphertext it
// has, and writes the files byte for byte, in one run. With --transport
// auto the ciphertext comes over TCP, reset by the kill; with quic, over
// QUIC, which hears nothing more: lex gives the replica up after
// replicaIdleTimeout, not QUIC's minute.
func TestLexReceiveFailsOver(t *testing.T) {
	for _, transport := range []string{"auto", "quic"} {
		t.Run(transport, func(t *testing.T) { receiveFailsOver(t, transport) })
	}
}

func receiveFailsOver(t *testing.T, transport string) {
	pgDSN, myDSN := clusterEngines(t)
	w := newWorld(t, "")
	ga := w.startConfig(clusterReplica(t, w, "ra", pgDSN, myDSN, nil), "")
	gb := w.startConfig(clusterReplica(t, w, "rb", pgDSN, myDSN, nil), "")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	aliceCfg := w.lexConfig(alice, gb.addr+","+ga.addr, ga.logKey)
	teamCfg := w.lexConfig(team, ga.addr+","+gb.addr, ga.logKey)
	for _, c := range []string{aliceCfg, teamCfg} {
		mustLex(t, "--config", c, "keygen")
		mustLex(t, "--config", c, "register")
	}
	folder := randomBundle(t, 96<<20)
	var sent struct {
		ID             string `json:"id"`
		CiphertextSize int64  `json:"ciphertext_size"`
	}
	out := mustLex(t, "--config", aliceCfg, "send", "--json", "--to", team, "--matter", "HL-2026-0042", folder)
	if err := json.Unmarshal([]byte(out), &sent); err != nil {
		t.Fatalf("lex send printed %q: %v", out, err)
	}

	dest := filepath.Join(w.dir, "received")
	// The file lex decrypts into, in its staging directory.
	staged := filepath.Join(dest, ".lex-staging-"+sent.ID+"-*", filepath.Base(folder), "production.bin")
	recv := lex(ctx, "--config", teamCfg, "-v", "--transport", transport, "receive", sent.ID, "-o", dest)
	// Kill the first replica once part of the ciphertext came through it
	// (the file lex stages grows: polled, as an outside view).
	var at int64
	for {
		if m, _ := filepath.Glob(staged); len(m) == 1 {
			if st, err := os.Stat(m[0]); err == nil && st.Size() >= 8<<20 {
				at = st.Size()
				break
			}
		}
		select {
		case <-recv.done:
			t.Fatalf("lex receive ended (exit %d) before the replica could be killed mid-download:\n%s", recv.code, recv.stderr.String())
		case <-time.After(2 * time.Millisecond):
		}
	}
	ga.kill()
	killed := time.Now()
	<-recv.done
	if recv.code != 0 {
		t.Fatalf("lex receive after the kill: exit %d\n%s", recv.code, recv.stderr.String())
	}
	t.Logf("killed the replica with %d bytes of plaintext staged, of %d bytes of ciphertext; lex receive finished %v later",
		at, sent.CiphertextSize, time.Since(killed).Round(time.Millisecond))
	if !strings.Contains(recv.stderr.String(), "moved to "+gb.addr) {
		t.Errorf("lex receive did not say it moved to %s:\n%s", gb.addr, recv.stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(folder, "production.bin"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dest, filepath.Base(folder), "production.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes (%v), want the %d sent, byte for byte", len(got), err, len(data))
	}
	gb.stop()
}
