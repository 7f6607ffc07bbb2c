package audit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/internal/enginetest"
)

// TestMySQLSeveralWriters is the evidence that tessera's MySQL driver serves
// several writers: two logs — two replicas — on one MariaDB database append
// at once. Every entry gets its own index, a receipt made by one replica for
// the other's entry verifies, each finds the other's entries, and the whole
// log verifies against the signed checkpoint.
func TestMySQLSeveralWriters(t *testing.T) {
	logs := twoReplicaLogs(t)

	const perLog = 40
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	for r, l := range logs {
		for i := range perLog {
			wg.Go(func() {
				actor := fmt.Sprintf("spiffe://test.example/replica%d/p%d", r, i)
				idx, err := l.Append(t.Context(), audit.Event{Kind: audit.KindKeyRegistration, Actor: actor,
					Keys: []string{"age1example"}})
				if err != nil {
					t.Errorf("Append on replica %d: %v", r, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if other, dup := seen[idx]; dup {
					t.Errorf("index %d given to %s and %s", idx, other, actor)
				}
				seen[idx] = actor
			})
		}
	}
	wg.Wait()
	if len(seen) != 2*perLog {
		t.Fatalf("%d distinct indices, want %d", len(seen), 2*perLog)
	}

	// Replica 0 finds and proves an entry replica 1 appended.
	actor := "spiffe://test.example/replica1/p7"
	idx, ok := logs[0].Find(audit.LookupKeys(actor))
	if !ok || seen[idx] != actor {
		t.Fatalf("replica 0 Find(%s) = %d, %v; want the entry replica 1 appended", actor, idx, ok)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rc, err := logs[0].Receipt(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.ParseVerifier(logs[1].VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	ev, cp, err := audit.VerifyReceipt(rc, v)
	if err != nil || ev.Actor != actor {
		t.Fatalf("VerifyReceipt = %v, %v", ev.Actor, err)
	}
	n, err := audit.VerifyLog(ctx, logs[1].Reader(), cp, nil)
	if err != nil || n != cp.Size || n < 2*perLog {
		t.Fatalf("VerifyLog = %d entries, %v; want %d ≥ %d", n, err, cp.Size, 2*perLog)
	}

	// A private entry (its body beside the log, in the shared database)
	// appended by one replica is found and opened by the other.
	ack := audit.Event{Kind: audit.KindAck, Actor: "spiffe://manila-lpo.example/site/review-team",
		Transfer: "0123456789abcdef0123456789abcdef", Recipients: []string{"spiffe://manila-lpo.example/site/review-team"}}
	if _, err := logs[1].Append(t.Context(), ack); err != nil {
		t.Fatal(err)
	}
	pi, ok := logs[0].Find(audit.LookupAck(ack.Transfer, ack.Actor))
	if !ok {
		t.Fatal("replica 0 does not find the private ack replica 1 appended")
	}
	if got, err := logs[0].Event(ctx, pi); err != nil || got.Kind != audit.KindAck || got.Transfer != ack.Transfer {
		t.Fatalf("replica 0 opens the private entry as %+v, %v", got, err)
	}

	// Clients read the log from any replica in the tlog-tiles layout.
	srv := httptest.NewServer(logs[1].Handler())
	defer srv.Close()
	for _, p := range []string{"/checkpoint", "/tile/entries/000.p/80"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(b) == 0 {
			t.Errorf("GET %s = %d (%d bytes)", p, resp.StatusCode, len(b))
		}
	}
}

// twoReplicaLogs opens two logs on one new MariaDB database with one key,
// as two replicas of a cluster do; both close with the test.
func twoReplicaLogs(t *testing.T) []*audit.Log {
	t.Helper()
	db := enginetest.NewMariaDB(t)
	dsn, err := db.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "audit.key")
	open := func() *audit.Log {
		l, err := audit.Open(t.Context(), audit.Config{KeyFile: key, Origin: "test.example/lexgate-audit",
			MySQL: audit.MySQLConfig{DSN: dsn}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	return []*audit.Log{open(), open()}
}
