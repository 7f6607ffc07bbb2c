package store

import (
	"context"
	"errors"
	"testing"
)

// testSharedCounters: the revocations version moves with every revocation
// and lifting (and only then), and the SIEM cursor reads back what was set,
// surviving a reopen.
func testSharedCounters(t *testing.T, openStore func(testing.TB, string) *Store) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	version := func() int64 {
		t.Helper()
		v, err := s.RevocationsVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	r := Revocation{ID: alice, By: "spiffe://example.org/admin", At: t0, Reason: "laptop stolen"}
	for _, step := range []struct {
		name    string
		do      func() error
		wantErr error
		moved   bool
	}{
		{"revoke", func() error { return s.Revoke(ctx, r) }, nil, true},
		{"revoke again", func() error { return s.Revoke(ctx, r) }, ErrExists, false},
		{"unrevoke", func() error { _, err := s.Unrevoke(ctx, alice); return err }, nil, true},
		{"unrevoke again", func() error { _, err := s.Unrevoke(ctx, alice); return err }, ErrNotFound, false},
	} {
		before := version()
		err := step.do()
		if !errors.Is(err, step.wantErr) || (step.wantErr == nil && err != nil) {
			t.Fatalf("%s: %v, want %v", step.name, err, step.wantErr)
		}
		if after := version(); (after != before) != step.moved {
			t.Errorf("%s: version %d -> %d, moved want %v", step.name, before, after, step.moved)
		}
	}
	if version() == v0 {
		t.Error("the version did not move")
	}

	if c, err := s.SIEMAuditCursor(ctx); err != nil || c != 0 {
		t.Fatalf("fresh SIEM cursor: %d %v", c, err)
	}
	for _, next := range []uint64{42, 43, 1 << 40} {
		if err := s.SetSIEMAuditCursor(ctx, next); err != nil {
			t.Fatal(err)
		}
		if c, err := s.SIEMAuditCursor(ctx); err != nil || c != next {
			t.Fatalf("SIEM cursor %d %v, want %d", c, err, next)
		}
	}
	s.Close()
	s = openStore(t, dir)
	if c, err := s.SIEMAuditCursor(ctx); err != nil || c != 1<<40 {
		t.Fatalf("SIEM cursor after reopen: %d %v", c, err)
	}
}

// TestWatchRevocationsReplicas: a revocation recorded through one replica's
// store is notified to another replica's watcher, which reads the new
// version; a transaction that fails (a duplicate) notifies nothing new.
func TestWatchRevocationsReplicas(t *testing.T) {
	s1, s2 := postgresReplicas(t)
	ctx, cancel := context.WithCancel(t.Context())
	listening, changed := make(chan struct{}), make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() {
		done <- s1.WatchRevocations(ctx, func() { close(listening) }, func() { changed <- struct{}{} })
	}()
	<-listening
	for i, id := range []string{alice, bob} {
		if err := s2.Revoke(t.Context(), Revocation{ID: id, By: "admin", At: t0, Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		<-changed
		if v, err := s1.RevocationsVersion(t.Context()); err != nil || v != int64(i+1) {
			t.Fatalf("version seen by r1 after revocation %d: %d %v", i+1, v, err)
		}
	}
	if err := s2.Revoke(t.Context(), Revocation{ID: alice, By: "admin", At: t0, Reason: "again"}); !errors.Is(err, ErrExists) {
		t.Fatal(err)
	}
	if _, err := s2.Unrevoke(t.Context(), alice); err != nil {
		t.Fatal(err)
	}
	<-changed
	select {
	case <-changed:
		t.Error("a notification for the failed revocation")
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch ended with %v", err)
	}
}
