package store

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
)

// addOne is an update of a risk record holding a decimal count.
func addOne(old []byte) ([]byte, error) {
	n := 0
	if old != nil {
		var err error
		if n, err = strconv.Atoi(string(old)); err != nil {
			return nil, err
		}
	}
	return []byte(strconv.Itoa(n + 1)), nil
}

// riskCount reads the count addOne keeps for id.
func riskCount(t *testing.T, s *Store, id string) int {
	t.Helper()
	b, err := s.RiskBaseline(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		return 0
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// concurrentAddOne runs n addOne updates of id, spread over the stores, all
// at once.
func concurrentAddOne(t *testing.T, n int, id string, stores ...*Store) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		s := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			if err := s.UpdateRiskBaseline(context.Background(), id, t0, addOne); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
}

// testRiskBaselines: an identity without a record reads nil; an update sees
// the record before it and writes its own; a failed update changes nothing;
// concurrent updates lose no count; records survive a reopen.
func testRiskBaselines(t *testing.T, openStore func(testing.TB, string) *Store) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	if b, err := s.RiskBaseline(ctx, alice); err != nil || b != nil {
		t.Fatalf("no record: %q, %v; want nil, nil", b, err)
	}
	for want := 1; want <= 3; want++ {
		if err := s.UpdateRiskBaseline(ctx, alice, t0, addOne); err != nil {
			t.Fatal(err)
		}
		if got := riskCount(t, s, alice); got != want {
			t.Fatalf("after %d updates: %d", want, got)
		}
	}
	boom := errors.New("boom")
	for _, tt := range []struct {
		name   string
		update func([]byte) ([]byte, error)
		want   error
	}{
		{"update fails", func([]byte) ([]byte, error) { return []byte("99"), boom }, boom},
		{"empty record", func([]byte) ([]byte, error) { return nil, nil }, ErrInvalid},
	} {
		if err := s.UpdateRiskBaseline(ctx, alice, t0, tt.update); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if got := riskCount(t, s, alice); got != 3 {
			t.Errorf("%s: the record changed to %d", tt.name, got)
		}
	}
	concurrentAddOne(t, 40, bob, s)
	if got := riskCount(t, s, bob); got != 40 {
		t.Errorf("40 concurrent updates counted %d", got)
	}
	s.Close()
	s = openStore(t, dir)
	if a, b := riskCount(t, s, alice), riskCount(t, s, bob); a != 3 || b != 40 {
		t.Errorf("after reopen: %d, %d; want 3, 40", a, b)
	}
}

// TestRiskBaselinesReplicas: two replicas on one PostgreSQL database update
// one identity's record at once, the record not existing at first: every
// update is counted, and each replica reads the same record.
func TestRiskBaselinesReplicas(t *testing.T) {
	s1, s2 := postgresReplicas(t)
	concurrentAddOne(t, 60, alice, s1, s2)
	for i, s := range []*Store{s1, s2} {
		if got := riskCount(t, s, alice); got != 60 {
			t.Errorf("replica r%d reads %d of 60 updates", i+1, got)
		}
	}
}
