package siem_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/internal/rsyslogtest"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/siem"
)

var (
	decisionIDRE = regexp.MustCompile(`decision_id="([^"]+)"`)
	auditIndexRE = regexp.MustCompile(`audit_index="([0-9]+)"`)
)

// received lists the decision ids rsyslog wrote, in order.
func received(t *testing.T, rs *rsyslogtest.Server) []string {
	return rs.Matching(t, "decision", decisionIDRE)
}

// logged lists the decision ids of the decision log's files, in order.
func logged(t *testing.T, path string) []string {
	files, _ := filepath.Glob(path + ".*")
	var all []string
	for n := 1; n <= len(files); n++ {
		all = append(all, fmt.Sprintf("%s.%d", path, n))
	}
	var ids []string
	for _, p := range append(all, path) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for sc := bufio.NewScanner(f); sc.Scan(); {
			var e policy.DecisionLogEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.DecisionID)
		}
		f.Close()
	}
	return ids
}

// TestRsyslogGetsEveryDecision: a gateway forwarding to a real rsyslogd
// over TLS delivers every decision of a run — across decision log
// rotations and a gateway restart in the middle — in order, none missing,
// none twice; refusals carry their reasons.
func TestRsyslogGetsEveryDecision(t *testing.T) {
	rs := rsyslogtest.Start(t)
	env := gatewaytest.Start(t, gatewaytest.WithConfig(func(c *gateway.Config) {
		c.SIEM = siem.Config{Syslog: siem.SyslogConfig{Addr: rs.Addr, CAFile: rs.CAFile, Hostname: "gw-1"},
			PollInterval: 20 * time.Millisecond}
		c.Policy.DecisionLogRotate = policy.DecisionLogRotation{MaxSize: 4 << 10, MaxAge: -1}
	}))
	run := func() {
		alice, team := env.NewClient(gatewaytest.Alice, false), env.NewClient(gatewaytest.Team, false)
		for i := range 6 {
			key := team.Register()
			labels := []string{}
			if i%2 == 1 {
				labels = []string{"health"}
			}
			ct := gatewaytest.Encrypt(t, []byte("x"), key.Recipient())
			if st, _, e := alice.Create([]string{gatewaytest.Team}, labels, ct, nil); st != http.StatusCreated && st != http.StatusForbidden {
				t.Fatalf("create: %d %+v", st, e)
			}
		}
	}
	run()
	beforeRestart := len(env.AuditEvents())
	env.Restart()
	run()
	env.Stop()
	dlog := filepath.Join(env.Config.Store.Dir, "decisions.log")
	want := logged(t, dlog)
	if len(want) < 12 {
		t.Fatalf("%d decisions logged, want at least 12", len(want))
	}
	if files, _ := filepath.Glob(dlog + ".*"); len(files) < 2 {
		t.Errorf("the decision log rotated %d times; the test wants it to rotate", len(files))
	}
	var got []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) { // rsyslog writes its file on its own time
		got = received(t, rs)
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rsyslog received %d decisions, the log holds %d; they differ (order, gaps or repeats):\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	audits := rs.Matching(t, "audit", auditIndexRE)
	for i, idx := range audits {
		if idx != strconv.Itoa(i) {
			t.Fatalf("audit entries received: %v; want 0, 1, 2, … with no gap or repeat", audits)
		}
	}
	t.Logf("forwarded %d decisions and %d audit entries (%d logged before the restart)", len(got), len(audits), beforeRestart)
	if len(audits) < beforeRestart || beforeRestart == 0 {
		t.Errorf("%d audit entries received, want at least the %d logged before the restart", len(audits), beforeRestart)
	}
	b, _ := os.ReadFile(rs.Out)
	if !strings.Contains(string(b), `allow="false" reasons="hipaa.no_baa"`) || !strings.Contains(string(b), `matter="HL-2026-0042"`) {
		t.Errorf("no refusal with its reason and matter in what rsyslog received:\n%s", b)
	}
}
