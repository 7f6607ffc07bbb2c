package policy_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lexgate/lexgate/gateway/internal/heapfloor"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/policies"
)

// bigWorld is the policy library with generated contracts: orgs
// organisations, agreements agreements between random pairs of them, and
// matters matters (matterName(i) is owned by orgName(i%orgs), which may
// send it to the next two organisations, with the client's consent).
func bigWorld(tb testing.TB, orgs, agreements, matters int) fs.FS {
	tb.Helper()
	fsys := fstest.MapFS{}
	rules, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range rules {
		b, _ := fs.ReadFile(policies.FS, name)
		fsys[name] = &fstest.MapFile{Data: b}
	}
	for _, name := range []string{"data/jurisdictions.json", "data/labels.json", "data/settings.json"} {
		b, _ := fs.ReadFile(policies.FS, name)
		fsys[name] = &fstest.MapFile{Data: b}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	countries := []string{"DE", "FR", "PH", "IN", "US", "GB", "CH", "JP", "CO", "CN", "SG", "BR"}
	os := map[string]any{}
	for i := range orgs {
		kind := "law_firm"
		if i%2 == 1 {
			kind = "lpo"
		}
		os[orgName(i)] = map[string]any{"name": fmt.Sprintf("Org %d", i), "kind": kind, "jurisdiction": countries[i%len(countries)],
			"certifications": []string{"ISO 27001"}, "sites": []policy.Site{{Name: "HQ", Paths: []string{"/"}}},
			"screening": map[string]any{"lists": []string{"EU", "OFAC SDN", "UK"}, "date": "2026-05-01", "result": "clear"}}
	}
	kinds := []string{"NDA", "SCC", "DPA", "BAA", "IDTA", "BCR"}
	var ags []policy.Agreement
	for i := range agreements {
		a, b := rng.IntN(orgs), rng.IntN(orgs)
		if i < orgs-1 { // a chain so every benchmark pair has agreements
			a, b = i, i+1
		}
		ag := policy.Agreement{Parties: []string{orgName(a), orgName(b)}, Kind: kinds[i%len(kinds)],
			Signed: "2025-01-01", Expires: fmt.Sprintf("20%d-12-31", 26+rng.IntN(4))}
		if ag.Kind == "SCC" || ag.Kind == "BCR" || ag.Kind == "IDTA" {
			ag.TIA = &policy.Assessment{Reference: fmt.Sprintf("TIA-%d", i), Date: "2026-01-15"}
		}
		if ag.Kind == "SCC" {
			ag.Version, ag.Module = "2021/914", 2
			ag.Roles = map[string]string{orgName(a): "controller", orgName(b): "processor"}
		}
		ags = append(ags, ag)
	}
	put := func(name string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		fsys[name] = &fstest.MapFile{Data: b}
	}
	ms := map[string]policy.Matter{}
	for i := range matters {
		next := []string{orgName((i + 1) % orgs), orgName((i + 2) % orgs)}
		ms[matterName(i)] = policy.Matter{Client: fmt.Sprintf("Client %d", i), Owner: orgName(i % orgs),
			Categories: []string{"client-confidential"}, DataSubjectJurisdictions: []string{countries[i%len(countries)]},
			ClientConsents:      []policy.Consent{{Reference: fmt.Sprintf("C-%d", i), Organisations: next, Given: "2025-01-01", Expires: "2029-12-31"}},
			PermittedRecipients: policy.Recipients{Organisations: next}}
	}
	put("data/organisations.json", map[string]any{"organisations": os})
	put("data/agreements.json", map[string]any{"agreements": ags})
	put("data/matters.json", map[string]any{"matters": ms})
	return fsys
}

// bigWorld1000 is bigWorld with 1,000 organisations, 10,000 agreements and
// 10,000 matters.
func bigWorld1000(tb testing.TB) fs.FS { return bigWorld(tb, 1000, 10000, 10000) }

func matterName(i int) string { return fmt.Sprintf("M-%05d", i) }

func orgName(i int) string { return fmt.Sprintf("org%04d.example", i) }

// BenchmarkDecide measures one decision of the policy library (a send of
// privileged EU personal data to two recipients) and reports the p50 and p99
// latency: with 1,000 organisations and 10,000 generated agreements, and
// with the shipped contracts. Each runs under the gateway's garbage
// collection settings (gc=gateway: lexgate serve keeps a 64 MiB heap floor,
// gc.min_heap_mib); the first also under Go's defaults alone (gc=go).
// The last case is a send the shipped contracts allow (privileged material
// from Harbor Law to Manila on matter HL-2026-0042): a refusal carries
// reasons and their messages, an allowed send its obligations.
// Each case runs on the evaluator the gateway uses (evaluator=auto: the
// shipped rules compiled to WebAssembly) and on OPA's interpreter beside
// it (evaluator=topdown).
func BenchmarkDecide(b *testing.B) {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	bundle := &policy.Bundle{Matter: "HL-2026-0050", Labels: []string{"privileged", "personal-data"}, Regions: []string{"DE"}, Size: 1 << 20, FileCount: 10}
	big := func(i int) policy.Input {
		k := i % 998
		// One of the ten matters of organisation k, which may go to k+1 and k+2.
		b := *bundle
		b.Matter = matterName(k + 1000*(i%10))
		return policy.Input{Action: "send", Time: at, Bundle: &b,
			Source:       policy.Party{ID: "spiffe://" + orgName(k) + "/paralegal/a"},
			Destinations: []policy.Party{{ID: "spiffe://" + orgName(k+1) + "/team/b"}, {ID: "spiffe://" + orgName(k+2) + "/team/c"}}}
	}
	shipped := func(int) policy.Input {
		return policy.Input{Action: "send", Time: at, Bundle: bundle, Source: alice,
			Destinations: []policy.Party{manila, {ID: "spiffe://bogota-lpo.example/site/x"}}}
	}
	allowed := func(int) policy.Input {
		return policy.Input{Action: "send", Time: at, Source: alice, Destinations: []policy.Party{manila},
			Bundle: &policy.Bundle{Matter: "HL-2026-0042", Labels: []string{"privileged"}, Size: 1 << 20, FileCount: 10}}
	}
	for _, c := range []struct {
		name  string
		fsys  func(testing.TB) fs.FS
		input func(int) policy.Input
		floor uint64
	}{
		{"orgs=1000,agreements=10000,matters=10000,gc=gateway", bigWorld1000, big, heapfloor.Default},
		{"orgs=1000,agreements=10000,matters=10000,gc=go", bigWorld1000, big, 0},
		{"shipped,gc=gateway", func(testing.TB) fs.FS { return policies.FS }, shipped, heapfloor.Default},
		{"shipped,allowed,gc=gateway", func(testing.TB) fs.FS { return policies.FS }, allowed, heapfloor.Default},
	} {
		for _, ev := range []string{policy.EvaluatorAuto, policy.EvaluatorTopdown} {
			b.Run(c.name+",evaluator="+ev, func(b *testing.B) {
				defer heapfloor.Start(c.floor)()
				benchDecide(b, c.fsys(b), ev, c.input)
			})
		}
	}
}

func benchDecide(b *testing.B, fsys fs.FS, evaluator string, input func(i int) policy.Input) {
	objects0 := heapObjects()
	eng, err := policy.New(b.Context(), policy.Config{FS: fsys, Logger: slog.New(slog.DiscardHandler), Evaluator: evaluator})
	if err != nil {
		b.Fatal(err)
	}
	if evaluator == policy.EvaluatorAuto && eng.Evaluator() != policy.EvaluatorWasm {
		b.Fatalf("evaluator auto chose %s for the shipped rules", eng.Evaluator())
	}
	// The engine's live heap: every garbage collection marks all of it
	// while decisions run.
	objects := heapObjects() - objects0
	if d, err := eng.Decide(b.Context(), input(0)); err != nil {
		b.Fatal(err)
	} else {
		b.Logf("the first decision: allow %v %v", d.Allow, d.Codes())
	}
	lat := make([]time.Duration, 0, b.N)
	cpu0, gc0, cycles0, steal0, loopStart := cpuTime(b), gcCPU(), gcCycles(), stealTicks(), time.Now()
	for i := 0; b.Loop(); i++ {
		in := input(i)
		start := time.Now()
		if _, err := eng.Decide(b.Context(), in); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	cpu, gc, cycles := cpuTime(b)-cpu0, gcCPU()-gc0, gcCycles()-cycles0
	// The share of the machine's CPU time its hypervisor gave to others
	// while the loop ran (steal in /proc/stat, Linux): the tail of a run
	// with steal says more about the host than about lexgate.
	if steal1 := stealTicks(); steal0 >= 0 && steal1 >= 0 {
		b.ReportMetric(float64(steal1-steal0)/100/time.Since(loopStart).Seconds()/float64(runtime.NumCPU())*100, "steal-%")
	}
	runtime.KeepAlive(eng)
	slices.Sort(lat)
	// CPU time (user and system, every thread: GC included) per decision
	// varies less than wall time on a machine shared with other work.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/op")
	// The garbage collector's share of it (runtime/metrics' estimate).
	b.ReportMetric(gc.Seconds()*1e6/float64(len(lat)), "gc-cpu-µs/op")
	b.ReportMetric(float64(objects), "engine-heap-objects")
	// How often a collection ran: each slows the decisions around it, which
	// is most of the tail (p99). Its pace is set by the live heap (a cycle
	// per live heap's worth of allocation), so a smaller heap means more,
	// shorter cycles.
	b.ReportMetric(float64(cycles)*1000/float64(len(lat)), "gc-cycles/1000op")
	// The heap size at which the next collection starts: the memory the
	// pacing costs.
	b.ReportMetric(float64(heapGoal())/(1<<20), "heap-goal-MiB")
	// The WebAssembly instances the loop used (one: it decides one at a
	// time), each with its own memory (BenchmarkWasmInstanceMemory).
	b.ReportMetric(float64(eng.WasmInstances()), "wasm-instances")
	// The expressions a decision evaluates (OPA's profiler, over the first
	// inputs, after the timed loop): what a rule rewrite changes, steady
	// where times are not. Counted by topdown, whichever evaluator decides.
	evals := 0
	for i := range evalSample {
		n, err := eng.Evaluations(b.Context(), input(i))
		if err != nil {
			b.Fatal(err)
		}
		evals += n
	}
	b.ReportMetric(float64(evals)/evalSample, "evals/op")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// evalSample is how many decisions BenchmarkDecide profiles for evals/op.
const evalSample = 20

// cpuTime is the CPU time the process has used so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapObjects is the number of live heap objects after a full collection.
func heapObjects() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapObjects)
}

// stealTicks is the machine's steal time so far in /proc/stat, in
// clock ticks (USER_HZ, 100 per second); -1 where it cannot be read.
func stealTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	n, err := strconv.ParseInt(f[8], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// heapGoal is the runtime's current heap goal in bytes.
func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// gcCycles is the number of garbage collections so far.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// gcCPU is the CPU time the garbage collector has used so far, as
// runtime/metrics estimates it.
func gcCPU() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return time.Duration(s[0].Value.Float64() * 1e9)
}
