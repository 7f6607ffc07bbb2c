package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"
)

// TestInboxWatch: `lex inbox --watch` prints a transfer already waiting,
// then each new one as it is sealed (the delay is logged: it is measured,
// not asserted), runs --exec for each, and goes on after the gateway
// restarts.
func TestInboxWatch(t *testing.T) {
	env, alice, team := setup(t)
	first := sendCase(t, alice)
	execLog := filepath.Join(t.TempDir(), "exec.log")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr syncBuf
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"--config", team, "inbox", "--watch", "--json",
			"--exec", "echo {id} >> " + execLog + " && echo exec-done"}, nil, pw, &stderr)
		pw.Close()
	}()
	arrivals, execs := make(chan string, 16), make(chan struct{}, 16)
	go func() {
		for sc := bufio.NewScanner(pr); sc.Scan(); {
			if sc.Text() == "exec-done" {
				execs <- struct{}{}
				continue
			}
			var tr api.Transfer
			if json.Unmarshal(sc.Bytes(), &tr) == nil && tr.ID != "" {
				arrivals <- tr.ID
			}
		}
	}()
	wait := func(id, what string, since time.Time) {
		t.Helper()
		select {
		case got := <-arrivals:
			if got != id {
				t.Fatalf("%s: printed %s, want %s", what, got, id)
			}
			t.Logf("%s: printed %v after the send returned", what, time.Since(since))
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s: %s never printed; stderr:\n%s", what, id, stderr.String())
		}
	}
	wait(first, "a transfer already waiting", time.Now())
	id := sendCase(t, alice)
	wait(id, "a new transfer", time.Now())

	env.Restart()
	sent := sendCase(t, alice)
	at := time.Now()
	wait(sent, "a transfer sent after a gateway restart", at)

	for range 3 { // --exec runs after the print
		select {
		case <-execs:
		case <-time.After(time.Minute):
			t.Fatal("--exec did not run three times")
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("lex inbox --watch exited %d after Ctrl-C; stderr:\n%s", code, stderr.String())
	}
	b, _ := os.ReadFile(execLog)
	if got := strings.Fields(string(b)); strings.Join(got, " ") != strings.Join([]string{first, id, sent}, " ") {
		t.Errorf("--exec ran for %v, want %v", got, []string{first, id, sent})
	}
}

// sendCase sends a case folder from config to the team and returns its id.
func sendCase(t *testing.T, config string) string {
	t.Helper()
	out := mustLex(t, config, "send", "--json", "--to", "spiffe://manila-lpo.example/site/review-team",
		"--matter", "HL-2026-0042", caseFolder(t))
	var res struct{ ID string }
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ID == "" {
		t.Fatalf("send printed %q: %v", out, err)
	}
	return res.ID
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReceiveAll: `lex receive --all -o DIR --ack` receives every waiting
// transfer into DIR/ID and acknowledges it, leaving the inbox empty.
func TestReceiveAll(t *testing.T) {
	_, alice, team := setup(t)
	ids := []string{sendCase(t, alice), sendCase(t, alice)}
	dir := t.TempDir()
	mustLex(t, team, "receive", "--all", "-o", dir, "--ack")
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(dir, id, "HL-2025-001", "index.txt")); err != nil {
			t.Errorf("transfer %s not received into DIR/ID: %v", id, err)
		}
	}
	if out := mustLex(t, team, "inbox"); !strings.Contains(out, "no transfers waiting") {
		t.Errorf("inbox after receive --all --ack:\n%s", out)
	}
	if code, _, errOut := lex(t, team, "receive", "--all", "-o", dir, "--receipt", "x.json"); code == 0 || !strings.Contains(errOut, "--receipt") {
		t.Errorf("--all with --receipt: exit %d, %s", code, errOut)
	}
}
