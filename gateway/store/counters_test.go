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
