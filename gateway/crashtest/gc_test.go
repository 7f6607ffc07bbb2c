package crashtest

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestServeHeapFloor: lexgate serve keeps a 64 MiB heap floor by default
// (gc.min_heap_mib), which shows on /metrics as a GC percentage over Go's
// 100 for its small idle heap, and leaves Go's pacing alone with -1.
func TestServeHeapFloor(t *testing.T) {
	for _, c := range []struct {
		name  string
		extra string
		floor bool
	}{
		{"default", "", true},
		{"off", "gc:\n  min_heap_mib: -1\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, "", c.extra)
			g := w.start("")
			p := gcPercent(t, g.admin)
			t.Logf("go_gc_gogc_percent %d", p)
			if c.floor && p <= 100 || !c.floor && p != 100 {
				t.Errorf("go_gc_gogc_percent %d, want %s", p, map[bool]string{true: "over 100", false: "100"}[c.floor])
			}
		})
	}
}

// gcPercent reads go_gc_gogc_percent from the gateway's /metrics.
func gcPercent(t *testing.T, admin string) int {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_gc_gogc_percent "); ok {
			p, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("go_gc_gogc_percent %q: %v", v, err)
			}
			return int(p)
		}
	}
	t.Fatalf("no go_gc_gogc_percent on /metrics (%v)", sc.Err())
	return 0
}
