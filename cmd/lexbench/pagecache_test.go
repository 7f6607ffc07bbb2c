package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCacheStates: a file made cold has none of its pages in the page cache
// as mincore sees it, a file made warm has all of them, and as-is leaves the
// file as it was; an unknown -get-cache value is refused, both is cold then
// warm.
func TestCacheStates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "served.bin")
	if err := writeRandomFile(p, 8<<20+123); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		state    string
		min, max float64
	}{
		{cacheWarm, 1, 1},
		{cacheAsIs, 1, 1}, // still warm
		{cacheCold, 0, 0},
		{cacheAsIs, 0, 0}, // still cold
		{cacheWarm, 1, 1},
	} {
		got, err := prepareCache(tc.state, []string{p})
		if err != nil {
			t.Fatalf("%s: %v", tc.state, err)
		}
		if got < tc.min || got > tc.max {
			t.Errorf("%s: %.3f of the file resident, want %.0f", tc.state, got, tc.min)
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
