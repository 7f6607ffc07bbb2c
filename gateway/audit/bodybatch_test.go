package audit_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/internal/enginetest"
)

// The bodies of concurrent private appends are written in batches, one
// sync each (bodybatch.go). These tests run on both drivers: a log in a
// directory, and a log two replicas share in MariaDB.

// TestBodiesConcurrentAppends: many private appends at once all succeed,
// each at its own index, and each entry opens to its own event, on the log
// that wrote it, on a log opened afresh from storage and, for a shared log,
// on the other replica.
func TestBodiesConcurrentAppends(t *testing.T) {
	t.Run("dir", func(t *testing.T) {
		dir := t.TempDir()
		l := openLog(t, dir)
		checkConcurrentBodies(t, l, func() *audit.Log {
			l.Close()
			return openLog(t, dir)
		})
	})
	t.Run("mariadb", func(t *testing.T) {
		logs := twoReplicaLogs(t)
		checkConcurrentBodies(t, logs[0], func() *audit.Log { return logs[1] })
	})
}

func checkConcurrentBodies(t *testing.T, l *audit.Log, reopen func() *audit.Log) {
	const writers, each = 32, 8
	var mu sync.Mutex
	at := map[uint64]string{} // index → transfer
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				tr := fmt.Sprintf("%016x%016x", w, i)
				idx, err := l.Append(t.Context(), audit.Event{Kind: audit.KindAck, Actor: manila, Recipients: []string{manila}, Transfer: tr})
				if err != nil {
					t.Errorf("Append %s: %v", tr, err)
					return
				}
				mu.Lock()
				if other, dup := at[idx]; dup {
					t.Errorf("index %d given to %s and %s", idx, other, tr)
				}
				at[idx] = tr
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(at) != writers*each {
		t.Fatalf("%d entries appended, want %d", len(at), writers*each)
	}
	check := func(name string, l *audit.Log) {
		for idx, tr := range at {
			ev, err := l.Event(t.Context(), idx)
			if err != nil || ev.Transfer != tr {
				t.Errorf("%s: entry %d opens as %q, %v; want the ack of %s", name, idx, ev.Transfer, err, tr)
			}
		}
	}
	check("the writer", l)
	check("reopened", reopen())
}

// TestBodiesWriteFails: when a body cannot be written, its append fails,
// naming the problem, and nothing is appended: the next entry takes the
// index the failed one would have had. Once the fault is mended, private
// appends work again.
func TestBodiesWriteFails(t *testing.T) {
	keyReg := func(n int) audit.Event {
		return audit.Event{Kind: audit.KindKeyRegistration, Actor: fmt.Sprintf("spiffe://test.example/p%d", n), Keys: []string{"age1example"}}
	}
	ack := audit.Event{Kind: audit.KindAck, Actor: manila, Recipients: []string{manila}, Transfer: "0123456789abcdef0123456789abcdef"}
	for _, c := range []bodyFault{dirFault(), mariaDBFault()} {
		t.Run(c.name, func(t *testing.T) {
			l := c.open(t)
			first, err := l.Append(t.Context(), keyReg(0))
			if err != nil {
				t.Fatal(err)
			}
			c.breakIt(t)
			if _, err := l.Append(t.Context(), ack); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Append with its body unwritable: %v; want an error naming %s", err, c.want)
			}
			next, err := l.Append(t.Context(), keyReg(1))
			if err != nil || next != first+1 {
				t.Fatalf("the entry after the failed one is at %d (%v), want %d: the failed append left an entry", next, err, first+1)
			}
			c.mend(t)
			i, err := l.Append(t.Context(), ack)
			if err != nil || i != first+2 {
				t.Fatalf("private append after the fault was mended: %d, %v; want %d", i, err, first+2)
			}
			if ev, err := l.Event(t.Context(), i); err != nil || ev.Transfer != ack.Transfer {
				t.Errorf("entry %d opens as %+v, %v", i, ev, err)
			}
		})
	}
}

// sharedLog opens a log in a new MariaDB database, and that database.
func sharedLog(t *testing.T) (*audit.Log, *sql.DB) {
	t.Helper()
	dsn, err := enginetest.NewMariaDB(t).NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(t.Context(), audit.Config{KeyFile: filepath.Join(t.TempDir(), "audit.key"),
		Origin: "test.example/lexgate-audit", MySQL: audit.MySQLConfig{DSN: dsn}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return l, db
}

// bodyFault makes a log's next body write fail, for real, and mends it.
type bodyFault struct {
	name    string
	open    func(t *testing.T) *audit.Log
	breakIt func(t *testing.T)
	mend    func(t *testing.T)
	want    string // in the failed append's error
}

// dirFault: the bodies' directory is a file, so no segment can be made in it.
func dirFault() bodyFault {
	var bodies string
	return bodyFault{name: "dir", want: "bodies",
		open: func(t *testing.T) *audit.Log {
			dir := t.TempDir()
			bodies = filepath.Join(dir, "audit", "bodies")
			return openLog(t, dir)
		},
		breakIt: func(t *testing.T) {
			if err := os.WriteFile(bodies, []byte("not a directory"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		mend: func(t *testing.T) {
			if err := os.Remove(bodies); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// mariaDBFault: the bodies' table is dropped under a shared log.
func mariaDBFault() bodyFault {
	var db *sql.DB
	return bodyFault{name: "mariadb", want: "lexgate_bodies",
		open: func(t *testing.T) *audit.Log {
			var l *audit.Log
			l, db = sharedLog(t)
			return l
		},
		breakIt: func(t *testing.T) {
			if _, err := db.ExecContext(t.Context(), `DROP TABLE lexgate_bodies`); err != nil {
				t.Fatal(err)
			}
		},
		mend: func(t *testing.T) {
			if _, err := db.ExecContext(t.Context(), `CREATE TABLE lexgate_bodies (commitment VARBINARY(32) NOT NULL PRIMARY KEY,
				salt VARBINARY(255) NOT NULL, body MEDIUMBLOB NOT NULL)`); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// TestBodiesOnDisk: what a crash or an older lexgate leaves in bodies/ is
// read: a segment's last line cut short (its sync never returned, so no
// leaf commits to it) is ignored, and appends go on in a new segment; a
// body kept in a file of its own, as before segments, still opens its entry.
func TestBodiesOnDisk(t *testing.T) {
	dir := t.TempDir()
	bodies := filepath.Join(dir, "audit", "bodies")
	l := openLog(t, dir)
	ev := audit.Event{Kind: audit.KindAck, Actor: manila, Recipients: []string{manila}, Transfer: "0123456789abcdef0123456789abcdef"}
	first, err := l.Append(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Receipt(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	segs, _ := filepath.Glob(filepath.Join(bodies, "seg-*.jsonl"))
	if len(segs) != 1 {
		t.Fatalf("segments after one append: %v", segs)
	}
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"commitment":"00`) // a crash mid-write
	f.Close()

	l = openLog(t, dir)
	second, err := l.Append(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{first, second} {
		if got, err := l.Event(t.Context(), i); err != nil || got.Transfer != ev.Transfer {
			t.Errorf("after a torn segment: entry %d opens as %+v, %v", i, got, err)
		}
	}
	l.Close()

	// The first body, moved to the layout of before segments.
	lf, err := audit.ParseLeaf([]byte(rc.Entry))
	if err != nil {
		t.Fatal(err)
	}
	h := fmt.Sprintf("%x", lf.Commitment)
	legacy, _ := json.Marshal(map[string]any{"salt": rc.Salt, "body": rc.Body})
	if err := os.Remove(segs[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(bodies, h[:2]), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bodies, h[:2], h+".json"), legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir)
	for _, i := range []uint64{first, second} {
		if got, err := l.Event(t.Context(), i); err != nil || got.Transfer != ev.Transfer {
			t.Errorf("with a body in its own file: entry %d opens as %+v, %v", i, got, err)
		}
	}
	if got, err := audit.OpenLocal(filepath.Join(dir, "audit"), lf); err != nil || got.Transfer != ev.Transfer {
		t.Errorf("OpenLocal: %+v, %v", got, err)
	}
}
