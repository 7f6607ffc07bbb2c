package crashtest

import (
	"bufio"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestServeHeapFloor: lexgate serve keeps a 128 MiB heap floor by default
// (gc.min_heap_mib), which shows on /metrics as a GC percentage over Go's
// 100 for its small idle heap, and leaves Go's pacing alone with -1. The
// floor is capped by a 100 MiB soft memory limit (gc.memory_limit_mib),
// none with -1.
func TestServeHeapFloor(t *testing.T) {
	for _, c := range []struct {
		name  string
		extra string
		floor bool
		limit float64
	}{
		{"default", "", true, 100 << 20},
		{"off", "gc:\n  min_heap_mib: -1\n  memory_limit_mib: -1\n", false, math.MaxInt64},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, "", c.extra)
			g := w.start("")
			p := int(goMetric(t, g.admin, "go_gc_gogc_percent"))
			t.Logf("go_gc_gogc_percent %d", p)
			if c.floor && p <= 100 || !c.floor && p != 100 {
				t.Errorf("go_gc_gogc_percent %d, want %s", p, map[bool]string{true: "over 100", false: "100"}[c.floor])
			}
			if l := goMetric(t, g.admin, "go_gc_gomemlimit_bytes"); l != c.limit {
				t.Errorf("go_gc_gomemlimit_bytes %g, want %g", l, c.limit)
			}
		})
	}
}

// goMetric reads the gauge name from the gateway's /metrics.
func goMetric(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			p, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", name, v, err)
			}
			return p
		}
	}
	t.Fatalf("no %s on /metrics (%v)", name, sc.Err())
	return 0
}
