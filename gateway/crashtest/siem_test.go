package crashtest

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/internal/enginetest"
	"github.com/lexgate/lexgate/gateway/internal/rsyslogtest"
	"github.com/lexgate/lexgate/gateway/siem"
	"github.com/lexgate/lexgate/gateway/store"
)

var auditIndexRE = regexp.MustCompile(`audit_index="([0-9]+)"`)

// auditIndexes counts, per audit index, the audit messages rs received.
func auditIndexes(t *testing.T, rs *rsyslogtest.Server) map[uint64]int {
	t.Helper()
	got := map[uint64]int{}
	for _, m := range rs.Matching(t, "audit", auditIndexRE) {
		i, _ := strconv.ParseUint(m, 10, 64)
		got[i]++
	}
	return got
}

// waitAudit waits until every index below n was received (rsyslog writes
// its file on its own time: polled).
func waitAudit(t *testing.T, rs *rsyslogtest.Server, n uint64) map[uint64]int {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		got := auditIndexes(t, rs)
		all := true
		for i := range n {
			if got[i] == 0 {
				all = false
				break
			}
		}
		if all {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute rsyslog holds %d of the %d audit entries", len(got), n)
		}
	}
}

// clusterReplica writes the config of replica name of a two-replica
// cluster on PostgreSQL and MariaDB, with its own data directory (decision
// log, SIEM cursor file) and the shared spool and audit key; rs, if not
// nil, is its SIEM.
func clusterReplica(t *testing.T, w *world, name, pgDSN, myDSN string, rs *rsyslogtest.Server) string {
	t.Helper()
	data := filepath.Join(w.dir, name)
	c := gateway.DevConfig(w.pki, data)
	c.ShutdownGrace = 2 * time.Second
	c.Log = gateway.LogConfig{Level: "info", Format: "json"}
	c.Store.Driver, c.Store.Replica = store.DriverPostgres, name
	c.Store.Postgres.DSN = pgDSN
	c.Store.SpoolDir = filepath.Join(w.dir, "shared-spool")
	c.Audit.MySQL.DSN, c.Audit.KeyFile = myDSN, filepath.Join(w.dir, "shared-audit.key")
	if rs != nil {
		c.SIEM = siem.Config{Syslog: siem.SyslogConfig{Addr: rs.Addr, CAFile: rs.CAFile, Hostname: name},
			PollInterval: 20 * time.Millisecond}
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(w.dir, name+".yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clusterEngines starts a private PostgreSQL and MariaDB for the test and
// returns a fresh database on each.
func clusterEngines(t *testing.T) (pgDSN, myDSN string) {
	t.Helper()
	pg := enginetest.NewPostgres(t)
	my := enginetest.NewMariaDB(t)
	var err error
	if pgDSN, err = pg.NewDatabase(t.Context()); err != nil {
		t.Fatal(err)
	}
	if myDSN, err = my.NewDatabase(t.Context()); err != nil {
		t.Fatal(err)
	}
	return pgDSN, myDSN
}

// TestSIEMOneForwarderPerCluster: two replica processes sharing
// PostgreSQL and the MariaDB audit log forward the one audit log to a real
// rsyslogd once, not once per replica: one holds the store's SIEM lock.
// Killed with SIGKILL, its lock goes with its database connection and the
// other replica carries on from the cursor in the store: every entry is
// received, none is missing, and only the batch in flight at the kill may
// come twice (at least once; audit_index is the receiver's dedup key).
func TestSIEMOneForwarderPerCluster(t *testing.T) {
	rs := rsyslogtest.Start(t)
	pgDSN, myDSN := clusterEngines(t)
	w := newWorld(t, "")
	ga := w.startConfig(clusterReplica(t, w, "ra", pgDSN, myDSN, rs), "")
	gb := w.startConfig(clusterReplica(t, w, "rb", pgDSN, myDSN, rs), "")

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	logSize := func() uint64 {
		t.Helper()
		l, err := audit.Open(ctx, audit.Config{MySQL: audit.MySQLConfig{DSN: myDSN}, KeyFile: filepath.Join(w.dir, "shared-audit.key"),
			Origin: "harbor-law.example/lexgate-audit"})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		n, err := l.Reader().(interface {
			IntegratedSize(context.Context) (uint64, error)
		}).IntegratedSize(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Traffic through both replicas: each appends to the one log.
	traffic := func(gs ...*gw) {
		for _, g := range gs {
			ac, tc := w.client(g, alice), w.client(g, team)
			key := registerTeam(t, tc)
			for range 3 {
				u := w.create(t, ac, ciphertext(t, 1<<10, key.Recipient()), false)
				if err := u.push(ctx, ac, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	traffic(ga, gb)
	before := logSize()
	got := waitAudit(t, rs, before)
	for i, n := range got {
		if n != 1 {
			t.Fatalf("with two replicas running, audit entry %d was received %d times: more than one forwarder", i, n)
		}
	}
	const holds = "siem: this replica forwards the cluster's audit log"
	holder, other := ga, gb
	if !strings.Contains(ga.out.String(), holds) {
		holder, other = gb, ga
	}
	if strings.Contains(other.out.String(), holds) {
		t.Fatal("both replicas say they forward the cluster's audit log")
	}
	holder.kill()
	killed := time.Now()
	traffic(other)
	after := logSize()
	got = waitAudit(t, rs, after)
	t.Logf("the other replica forwarded the log to %d entries %v after the kill", after, time.Since(killed).Round(time.Millisecond))
	if !strings.Contains(other.out.String(), holds) {
		t.Error("the surviving replica never took the forwarding over")
	}
	// At least once: only the batch delivered but not yet recorded in the
	// store when the holder died may come twice, and nothing more often.
	var twice []uint64
	for i, n := range got {
		switch {
		case i >= after:
			t.Errorf("audit index %d received, beyond the log's %d entries", i, after)
		case n > 2:
			t.Errorf("audit entry %d received %d times", i, n)
		case n == 2:
			twice = append(twice, i)
		}
	}
	slices.Sort(twice)
	if len(twice) > 0 {
		t.Logf("received twice (deduplicated by audit_index): %v", twice)
		if first, last := twice[0], twice[len(twice)-1]; last-first+1 != uint64(len(twice)) || len(twice) > 256 {
			t.Errorf("the entries received twice %v are not one batch", twice)
		}
	}
	other.stop()
}
