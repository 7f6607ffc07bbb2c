package store

import (
	"context"
	"slices"
	"sync"
)

// keyedMutex serializes work on one transfer while letting work on other
// transfers run in parallel. Waiting for the lock honours the context.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	ch   chan struct{} // holds one token while locked
	refs int           // holders and waiters; the entry is dropped at zero
}

// lock acquires the lock for key, or returns ctx's error. On success the
// caller must call the returned unlock exactly once.
func (k *keyedMutex) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyedEntry)
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{ch: make(chan struct{}, 1)}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()

	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; k.release(key, e) }, nil
	case <-ctx.Done():
		k.release(key, e)
		return nil, ctx.Err()
	}
}

func (k *keyedMutex) release(key string, e *keyedEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(k.m, key)
	}
}

// Lock-key classes: transfers and named locks never share a key.
const (
	lockClassTransfer = 1
	lockClassNamed    = 2
)

// lockTransfers serializes work on the given transfers (uploads, sealing,
// deletion) with every other holder of their locks: in this process on the
// embedded default, on every replica on PostgreSQL (advisory locks). The ids
// are locked in sorted order, so two callers never deadlock. The caller calls
// unlock exactly once.
func (s *Store) lockTransfers(ctx context.Context, ids ...string) (unlock func(), err error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if s.pg != nil {
		return s.pg.lock(ctx, s.db, lockClassTransfer, ids...)
	}
	return lockAll(ctx, &s.locks, ids)
}

// Lock holds the lock called name until unlock is called: work that must
// run on one replica at a time, such as the retention sweep. On PostgreSQL it
// is an advisory lock every replica sees; on the embedded default, where one
// process owns the store, a lock of this process. It waits until the lock is
// free or ctx ends.
func (s *Store) Lock(ctx context.Context, name string) (unlock func(), err error) {
	if name == "" {
		return nil, invalidf("lock: empty name")
	}
	if s.pg != nil {
		return s.pg.lock(ctx, s.db, lockClassNamed, name)
	}
	return lockAll(ctx, &s.named, []string{name})
}

func lockAll(ctx context.Context, k *keyedMutex, keys []string) (func(), error) {
	var unlocks []func()
	release := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for _, key := range keys {
		u, err := k.lock(ctx, key)
		if err != nil {
			release()
			return nil, err
		}
		unlocks = append(unlocks, u)
	}
	return release, nil
}
