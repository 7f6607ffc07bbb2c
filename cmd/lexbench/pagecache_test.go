package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCacheStates: a file made cold has (almost) none of its pages in the
// page cache as mincore sees it, a file made warm has (almost) all of them, and
// as-is leaves the file as it was; an unknown -get-cache value is refused, both
// is cold then warm. "Almost": the kernel may reclaim a few pages of a warm
// file at any moment (memory pressure from the tests running beside this one,
// or this VM's DAMON proactive reclaim: a CI run saw 0.998 warm), so the test
// asks for the states to be told apart, not for every page.
func TestCacheStates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "served.bin")
	if err := writeRandomFile(p, 8<<20+123); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		state    string
		min, max float64
	}{
		{cacheWarm, 0.9, 1},
		{cacheAsIs, 0.9, 1}, // still warm
		{cacheCold, 0, 0.1},
		{cacheAsIs, 0, 0.1}, // still cold
		{cacheWarm, 0.9, 1},
	} {
		got, err := prepareCache(tc.state, []string{p})
		if err != nil {
			t.Fatalf("%s: %v", tc.state, err)
		}
		if got < tc.min || got > tc.max {
			t.Errorf("%s: %.3f of the file resident, want %.1f to %.1f", tc.state, got, tc.min, tc.max)
		}
	}
	for _, bad := range []string{"lukewarm", "cold,cold", "", "warm,"} {
		if _, err := getCaches(bad); err == nil {
			t.Errorf("-get-cache %q accepted", bad)
		}
	}
	if c, err := getCaches("warm,as-is"); err != nil || len(c) != 2 || c[0] != cacheWarm || c[1] != cacheAsIs {
		t.Errorf("warm,as-is = %v, %v", c, err)
	}
	if c, err := getCaches(cacheBoth); err != nil || len(c) != 2 || c[0] != cacheCold || c[1] != cacheWarm {
		t.Errorf("both = %v, %v", c, err)
	}
	if d := dirtyMiB(); d < 0 {
		t.Errorf("dirtyMiB = %v", d)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}
