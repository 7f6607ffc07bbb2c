package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name  string
		floor uint64
		base  int
		h     heap
		want  int
	}{
		{"before the first collection", 64 * mib, 100, heap{}, 100},
		{"small heap: goal at the floor", 64 * mib, 100, heap{live: 12 * mib, roots: 1 * mib}, 400},
		{"goal of base above the floor", 64 * mib, 100, heap{live: 40 * mib}, 100},
		{"live heap over the floor", 64 * mib, 100, heap{live: 80 * mib}, 100},
		{"GOGC above what the floor needs", 64 * mib, 800, heap{live: 12 * mib}, 800},
		{"tiny heap: the runtime's minimum heap at the floor", 64 * mib, 100, heap{live: 1 << 10}, 1600},
		{"small floor", 2 * mib, 100, heap{live: 1 << 10}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentFor(tc.floor, tc.base, tc.h); got != tc.want {
				t.Errorf("percentFor(%d, %d, %+v) = %d, want %d", tc.floor, tc.base, tc.h, got, tc.want)
			}
		})
	}
}

func TestBasePercent(t *testing.T) {
	for _, tc := range []struct {
		gogc string
		want int
		ok   bool
	}{
		{"", 100, true},
		{"200", 200, true},
		{"off", 0, false},
		{"-1", 0, false},
		{"junk", 100, true}, // the runtime ignores it too
	} {
		if got, ok := basePercent(tc.gogc); got != tc.want || ok != tc.ok {
			t.Errorf("basePercent(%q) = %d, %v; want %d, %v", tc.gogc, got, ok, tc.want, tc.ok)
		}
	}
}

// sink keeps allocations from being optimised away.
var sink []byte

// collections is how many collections allocating n bytes of garbage, 1 KiB
// at a time, runs.
func collections(n int) uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	for range n >> 10 {
		sink = make([]byte, 1<<10)
	}
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// goDefault runs the test with Go's default pacing (GOGC=100), whatever
// the environment of the test process says, and puts it back afterwards.
func goDefault(t *testing.T) {
	t.Setenv("GOGC", "")
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

func gcPercent() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestFloorSpacesCollections allocates 512 MiB of garbage with a live heap
// of a few hundred KB: Go's pacing alone collects every 4 MB, over a
// hundred times; with a 64 MiB floor it collects about every 64 MB, eight
// times. Stopping restores GOGC.
func TestFloorSpacesCollections(t *testing.T) {
	goDefault(t)
	runtime.GC()
	without := collections(512 << 20)
	stop := Start(64 << 20)
	with := collections(512 << 20)
	// The floor is set by a cleanup after each collection, on a goroutine
	// of its own: on a busy machine it may not have run yet.
	for deadline := time.Now().Add(time.Minute); gcPercent() <= 100; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("GC percentage %d with a 64 MiB floor and a small heap, want over 100", gcPercent())
		}
	}
	stop()
	if p := gcPercent(); p != 100 {
		t.Errorf("GC percentage %d after stop, want 100 again", p)
	}
	t.Logf("collections for 512 MiB of garbage: %d without a floor, %d with 64 MiB", without, with)
	if with < 4 || with > 20 || with*4 > without {
		t.Errorf("%d collections with a 64 MiB floor against %d without, want 4 to 20 and at most a quarter", with, without)
	}
	stop() // idempotent
	if p := gcPercent(); p != 100 {
		t.Errorf("GC percentage %d after a second stop, want 100", p)
	}
}

func TestOffAndZeroDoNothing(t *testing.T) {
	goDefault(t)
	t.Setenv("GOGC", "off")
	Start(64 << 20)()
	if p := gcPercent(); p != 100 {
		t.Errorf("GC percentage %d after Start with GOGC=off, want it left at 100", p)
	}
	t.Setenv("GOGC", "")
	Start(0)()
	if p := gcPercent(); p != 100 {
		t.Errorf("GC percentage %d after Start(0), want it left at 100", p)
	}
}
