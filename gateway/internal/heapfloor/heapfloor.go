// Package heapfloor keeps Go's garbage collector from running while the
// heap is small.
//
// Go starts a collection each time the program has allocated as much again
// as its live heap (GOGC=100). A gateway whose live heap is a policy set of
// about 11 MB, and whose every decision allocates about 50 KB, then collects
// every ~200 decisions, and the decisions that run while a collection marks
// take two to three times as long: three or four in a hundred, which decides
// the decision latency's 99th percentile (policies/README.md, Speed). A
// floor of 64 MiB makes such a gateway collect about five times less often,
// for at most 64 MiB of memory; a gateway whose live heap is above half the
// floor (a busy one) collects exactly as Go would have. The floor is a heap
// goal: the process's RSS reaches it plus what lies outside the heap (the
// binary's text, stacks, the runtime's own, the policy's WebAssembly
// instances), about 50–70 MiB more, once the heap has filled to it with
// garbage, as relaying a large file over QUIC or SFTP does within seconds; at
// 64 MiB that stays under the 150 MiB a gateway may take relaying one
// transfer.
//
// The floor works through GOGC: after each collection, [Start]'s watcher
// sets the GC percentage (debug.SetGCPercent) so that the next collection
// starts when the heap reaches the floor, or Go's own goal (GOGC of the
// environment, 100 if unset) when that is larger. GOMEMLIMIT still applies
// on top: the heap goal never goes over the memory limit.
package heapfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
)

// Default is the floor the gateway keeps unless configured otherwise
// (gc.min_heap_mib).
const Default = 64 << 20

// minHeap is the runtime's smallest heap goal at GOGC=100, which it
// scales with the GC percentage (4 MB at 100, 16 MB at 400...).
const minHeap = 4 << 20

// Start keeps the heap goal at floor bytes or more until stop is called,
// which restores the GC percentage the process started with. It runs one
// collection, to measure the live heap. It does nothing when floor is 0 or
// when GOGC=off turns the collector off; a process calls it once (the GC
// percentage is process-wide).
func Start(floor uint64) (stop func()) {
	base, ok := basePercent(os.Getenv("GOGC"))
	if floor == 0 || !ok {
		return func() {}
	}
	w := &watcher{floor: floor, base: base, last: base}
	// A collection now measures the live heap, so that the floor holds from
	// the start rather than from the first collection the program runs.
	runtime.GC()
	w.adjust()
	w.arm()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.stopped {
			w.stopped = true
			debug.SetGCPercent(base)
		}
	}
}

// basePercent reads GOGC as the runtime does: a number, "off" (ok false),
// or 100 when unset or not a number.
func basePercent(gogc string) (percent int, ok bool) {
	if gogc == "off" {
		return 0, false
	}
	if n, err := strconv.Atoi(gogc); err == nil {
		if n < 0 {
			return 0, false
		}
		return n, true
	}
	return 100, true
}

// watcher adjusts the GC percentage after each collection.
type watcher struct {
	floor uint64
	base  int

	mu      sync.Mutex
	stopped bool
	last    int // the percentage last set
}

// sentinel is allocated for each collection; its cleanup runs after the
// collection that found it unreachable. It holds a pointer, so that it is
// not put in a block shared with other small objects (which could keep it
// reachable forever).
type sentinel struct{ _ *byte }

// arm attaches the next cleanup.
func (w *watcher) arm() {
	runtime.AddCleanup(&sentinel{}, func(w *watcher) {
		if w.adjust() {
			w.arm()
		}
	}, w)
}

// adjust sets the GC percentage for the live heap of the last collection,
// and reports whether the watcher is still running.
func (w *watcher) adjust() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	if p := percentFor(w.floor, w.base, readHeap()); p != w.last {
		debug.SetGCPercent(p)
		w.last = p
	}
	return true
}

// heap is what the runtime's heap goal is made of.
type heap struct {
	live  uint64 // live heap marked by the last collection
	roots uint64 // goroutine stacks and globals, which GOGC also scales
}

// readHeap reads the heap of the last collection from runtime/metrics.
func readHeap() heap {
	s := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
	metrics.Read(s)
	var h heap
	if s[0].Value.Kind() == metrics.KindUint64 {
		h.live = s[0].Value.Uint64()
	}
	for _, x := range s[1:] {
		if x.Value.Kind() == metrics.KindUint64 {
			h.roots += x.Value.Uint64()
		}
	}
	return h
}

// percentFor is the GC percentage whose heap goal is floor, or base when
// base's goal is already at or above floor. The runtime's goal is
// live + (live+roots)×percent/100, and never under minHeap×percent/100:
// for a live heap so small that the first would take a percentage whose
// minimum is over the floor, the percentage is the one whose minimum is the
// floor.
func percentFor(floor uint64, base int, h heap) int {
	scan := h.live + h.roots
	if h.live == 0 || h.live >= floor {
		return base
	}
	p := (floor - h.live) * 100 / scan
	p = min(p, floor*100/minHeap)
	return max(int(p), base)
}
