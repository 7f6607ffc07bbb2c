package audit_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
)

// TestMySQLBodiesAcrossReplicas: on a log two replicas share, each serves
// the private bodies of a trust domain's entries whichever replica
// appended them, each exactly once and in order (lex audit verify walks
// them beside the tree), also after a lookup made the replica read its own
// entries again; and each opens the other's private entries for the SIEM.
func TestMySQLBodiesAcrossReplicas(t *testing.T) {
	logs := twoReplicaLogs(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const team = "spiffe://manila-lpo.example/site/review-team"
	var want []uint64
	for i := range 6 {
		ev := audit.Event{Kind: audit.KindAck, Actor: team, Recipients: []string{team},
			Transfer: fmt.Sprintf("%032x", i)}
		if i%3 == 2 { // a public entry between the private ones
			ev = audit.Event{Kind: audit.KindKeyRegistration, Actor: fmt.Sprintf("spiffe://test.example/p%d", i), Keys: []string{"age1example"}}
		}
		idx, err := logs[i%2].Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == audit.KindAck {
			want = append(want, idx)
		}
	}
	slices.Sort(want)
	// Replica 0 looks up an entry of replica 1's: it reads the log from
	// where it last indexed, its own entries included.
	if _, ok := logs[0].Find(audit.LookupAck(fmt.Sprintf("%032x", 1), team)); !ok {
		t.Fatal("replica 0 does not find replica 1's ack")
	}
	size, err := logs[0].Reader().(interface {
		IntegratedSize(context.Context) (uint64, error)
	}).IntegratedSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for r, l := range logs {
		var got []uint64
		if err := l.Bodies(ctx, "manila-lpo.example", size, func(b audit.Body) error {
			got = append(got, b.Index)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("replica %d serves the bodies of entries %v, want %v (each once, in order)", r, got, want)
		}
		for _, i := range want {
			if ev, err := l.Event(ctx, i); err != nil || ev.Kind != audit.KindAck {
				t.Errorf("replica %d opens entry %d as %+v, %v", r, i, ev, err)
			}
		}
	}
}
