package policy_test

// The policy library compiled by OPA to WebAssembly and run by wazero (the
// gateway's evaluator for the shipped rules: Config.Evaluator "auto"),
// beside OPA's interpreter (topdown). TestWasmDecidesAsTopdown holds the two
// to the same decisions; the other tests hold the WebAssembly evaluator to
// the engine's promises: fail closed, bounded in time, reloadable.

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/policies"
)

// TestWasmDecidesAsTopdown requires the compiled library to decide as
// topdown does: the same allow, reasons (messages included), notes and
// obligations, with the shipped contracts, in the 1,000-organisation
// world, and for every input of the decision matrix (TestDecisionMatrix)
// in the fixture world of the Rego unit tests. It holds the production
// evaluators to it: "auto" chooses WebAssembly for these sets because
// this test passes.
func TestWasmDecidesAsTopdown(t *testing.T) {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	shipped := []policy.Input{
		send(june, []string{"privileged"}, manila),
		send(june, []string{"health"}, bob),
		send(june, []string{"health"}, manila),
		sendOn("HL-2026-0050", june, nil, bogota),
		sendOn("HL-2026-0050", june, []string{"privileged", "personal-data"}, manila, bogota, bob),
		send(june, nil, evil),
		{Action: "register_key", Time: june, Source: manila},
		{Action: "receive", Time: june, Source: manila, Destinations: []policy.Party{alice},
			Bundle: &policy.Bundle{Matter: "HL-2026-0042", Labels: []string{"privileged"}}},
		{Action: "admin", Time: june, Source: alice},
	}
	big := make([]policy.Input, 100)
	for i := range big {
		big[i] = bigInput(at, i)
	}
	for _, c := range []struct {
		name   string
		fsys   func(testing.TB) fs.FS
		inputs []policy.Input
	}{
		{"shipped", func(testing.TB) fs.FS { return policies.FS }, shipped},
		{"orgs=1000", bigWorld1000, big},
		{"fixtures,matrix", func(tb testing.TB) fs.FS { return policy.FixtureWorld(tb.(*testing.T)) }, policy.MatrixInputs()},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := c.fsys(t)
			engines := map[string]*policy.Engine{}
			for _, ev := range []string{policy.EvaluatorTopdown, policy.EvaluatorAuto} {
				eng, err := policy.New(t.Context(), policy.Config{FS: fsys, Timeout: 10 * time.Second, Logger: quiet, Evaluator: ev})
				if err != nil {
					t.Fatal(err)
				}
				engines[ev] = eng
			}
			if got := engines[policy.EvaluatorAuto].Evaluator(); got != policy.EvaluatorWasm {
				t.Fatalf("evaluator auto chose %q for the shipped rules, want %q", got, policy.EvaluatorWasm)
			}
			allowed := 0
			for i, in := range c.inputs {
				want, err := engines[policy.EvaluatorTopdown].Decide(t.Context(), in)
				if err != nil {
					t.Fatal(err)
				}
				got, err := engines[policy.EvaluatorAuto].Decide(t.Context(), in)
				if err != nil {
					t.Fatalf("input %d: %v", i, err)
				}
				if !sameDecision(got, want) {
					t.Errorf("input %d (%+v): WebAssembly decided\n%+v\ntopdown\n%+v", i, in, got, want)
				}
				if want.Allow {
					allowed++
				}
			}
			t.Logf("%d decisions alike, %d of them allowed", len(c.inputs), allowed)
		})
	}
}

// sameDecision reports whether a and b decide alike: allow, reasons,
// notes, obligations (the ID and policy version aside).
func sameDecision(a, b policy.Decision) bool {
	return a.Allow == b.Allow && reflect.DeepEqual(nonEmpty(a.Reasons), nonEmpty(b.Reasons)) &&
		reflect.DeepEqual(nonEmpty(a.Notes), nonEmpty(b.Notes)) &&
		a.Obligations.ExpiresAt.Equal(b.Obligations.ExpiresAt) &&
		a.Obligations.RetentionDays == b.Obligations.RetentionDays && a.Obligations.MaxDownloads == b.Obligations.MaxDownloads
}

// nonEmpty is rs, or nil when empty.
func nonEmpty(rs []policy.Reason) []policy.Reason {
	if len(rs) == 0 {
		return nil
	}
	return rs
}

// bigInput is the input of BenchmarkDecide's 1,000-organisation case.
func bigInput(at time.Time, i int) policy.Input {
	k := i % 998
	return policy.Input{Action: "send", Time: at,
		Bundle:       &policy.Bundle{Matter: matterName(k + 1000*(i%10)), Labels: []string{"privileged", "personal-data"}, Regions: []string{"DE"}, Size: 1 << 20, FileCount: 10},
		Source:       policy.Party{ID: "spiffe://" + orgName(k) + "/paralegal/a"},
		Destinations: []policy.Party{{ID: "spiffe://" + orgName(k+1) + "/team/b"}, {ID: "spiffe://" + orgName(k+2) + "/team/c"}}}
}

// evaluators are the evaluators a table test runs on.
var evaluators = []string{policy.EvaluatorTopdown, policy.EvaluatorWasm}

// newEngineOn is newEngine on the evaluator ev.
func newEngineOn(t *testing.T, ev string, files map[string]string, timeout time.Duration) (*policy.Engine, error) {
	t.Helper()
	return policy.New(t.Context(), policy.Config{FS: mapFS(files), Timeout: timeout, Logger: quiet, Evaluator: ev})
}

// TestEvaluatorChoice holds "auto" to WebAssembly for the shipped rules
// only (whatever the data), and the forced evaluators to what they say.
func TestEvaluatorChoice(t *testing.T) {
	changed := fstest.MapFS{}
	if err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(policies.FS, p)
		if p == "lexgate.rego" {
			b = append(b, "\n# a firm's comment\n"...)
		}
		changed[p] = &fstest.MapFile{Data: b}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	extra := fstest.MapFS{}
	for p, f := range changed {
		extra[p] = f
	}
	extra["lexgate.rego"] = &fstest.MapFile{Data: must(fs.ReadFile(policies.FS, "lexgate.rego"))}
	extra["firm.rego"] = &fstest.MapFile{Data: []byte("package lexgate.firm\n\nx := 1\n")}
	tests := []struct {
		name, evaluator string
		fsys            func(testing.TB) fs.FS
		want            string
	}{
		{"shipped", "", func(testing.TB) fs.FS { return policies.FS }, policy.EvaluatorWasm},
		{"shipped rules, other data", policy.EvaluatorAuto, bigWorld1000, policy.EvaluatorWasm},
		{"a rule file changed", policy.EvaluatorAuto, func(testing.TB) fs.FS { return changed }, policy.EvaluatorTopdown},
		{"a rule file added", policy.EvaluatorAuto, func(testing.TB) fs.FS { return extra }, policy.EvaluatorTopdown},
		{"own rules", policy.EvaluatorAuto, func(testing.TB) fs.FS { return mapFS(map[string]string{"p.rego": allowAll}) }, policy.EvaluatorTopdown},
		{"own rules, wasm", policy.EvaluatorWasm, func(testing.TB) fs.FS { return mapFS(map[string]string{"p.rego": allowAll}) }, policy.EvaluatorWasm},
		{"shipped, topdown", policy.EvaluatorTopdown, func(testing.TB) fs.FS { return policies.FS }, policy.EvaluatorTopdown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs strings.Builder
			eng, err := policy.New(t.Context(), policy.Config{FS: tt.fsys(t), Evaluator: tt.evaluator, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if got := eng.Evaluator(); got != tt.want {
				t.Errorf("Evaluator() = %q, want %q", got, tt.want)
			}
			if want := "msg=\"policy loaded\" policy_version=" + eng.Version() + " evaluator=" + tt.want; !strings.Contains(logs.String(), want) {
				t.Errorf("the log does not say %q:\n%s", want, logs.String())
			}
			if d, err := eng.Decide(t.Context(), policy.Input{Action: "send", Time: june, Source: alice}); err != nil {
				t.Errorf("Decide = %+v, %v", d, err)
			}
		})
	}
	// The library copied to a policy.dir, Rego tests and all, as a firm
	// starts its own set.
	dir := t.TempDir()
	if err := os.CopyFS(dir, policies.FS); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.New(t.Context(), policy.Config{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if eng.Evaluator() != policy.EvaluatorWasm {
		t.Errorf("the shipped library in a policy.dir: Evaluator() = %q, want %q", eng.Evaluator(), policy.EvaluatorWasm)
	}
	if err := os.WriteFile(filepath.Join(dir, "firm.rego"), []byte("package lexgate.firm\n\nx := 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := eng.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if eng.Evaluator() != policy.EvaluatorTopdown {
		t.Errorf("a rule file added to the policy.dir: Evaluator() = %q, want %q", eng.Evaluator(), policy.EvaluatorTopdown)
	}
	if _, err := policy.New(t.Context(), policy.Config{FS: policies.FS, Evaluator: "fast"}); err == nil || !strings.Contains(err.Error(), `evaluator "fast"`) {
		t.Errorf("New with evaluator fast: %v", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestWasmRefusesWhatItCannotCompile: a set that cannot be compiled to
// WebAssembly (here: it has no decision rule, the module's entrypoint) is
// rejected on "wasm", naming the reason and the way out.
func TestWasmRefusesWhatItCannotCompile(t *testing.T) {
	_, err := newEngineOn(t, policy.EvaluatorWasm, map[string]string{"p.rego": "package lexgate\n\nx := 1\n"}, 0)
	if err == nil || !strings.Contains(err.Error(), "WebAssembly") || !strings.Contains(err.Error(), `"topdown"`) {
		t.Errorf("New = %v, want an error naming WebAssembly and the topdown evaluator", err)
	}
}

// TestFailsClosedOnEitherEvaluator: an error while evaluating, in a
// builtin the WebAssembly module leaves to its host (time.parse_rfc3339_ns,
// time.parse_duration_ns) or in the module itself (conflicting values: opa_abort), is a
// refusal with CodeError on both evaluators: never an allow because a deny
// rule did not fire.
func TestFailsClosedOnEitherEvaluator(t *testing.T) {
	const allowUnlessDenied = `
decision := {"allow": count(deny) == 0, "reasons": [{"code": r, "message": r} | some r in deny]}
`
	tests := map[string]string{
		"host builtin in deny":      "package lexgate\n\ndeny contains \"late\" if time.parse_rfc3339_ns(input.action) > 0\n" + allowUnlessDenied,
		"host builtin in a message": "package lexgate\n\ndeny contains sprintf(\"%d\", [time.parse_duration_ns(input.action)]) if input.action == \"send\"\n" + allowUnlessDenied,
		"conflict":                  "package lexgate\n\nx := 1 if input.action == \"send\"\n\nx := 2 if input.action == \"send\"\n\ndeny contains \"x\" if x == 3\n" + allowUnlessDenied,
	}
	for name, src := range tests {
		for _, ev := range evaluators {
			t.Run(name+"/evaluator="+ev, func(t *testing.T) {
				eng, err := newEngineOn(t, ev, map[string]string{"p.rego": src}, 0)
				if err != nil {
					t.Fatal(err)
				}
				for range 3 { // the failed instance is discarded: the next decision fails alike
					d, err := eng.Decide(t.Context(), policy.Input{Action: "send", Time: june, Source: alice})
					if !errors.Is(err, policy.ErrEvaluation) {
						t.Errorf("err = %v, want ErrEvaluation", err)
					}
					if d.Allow || len(d.Reasons) != 1 || d.Reasons[0].Code != policy.CodeError {
						t.Errorf("Decide = %+v, want a refusal with %s", d, policy.CodeError)
					}
				}
			})
		}
	}
}

// TestExplainStaysOnTopdown: a hypothetical decision (lex policy explain)
// is evaluated by topdown even when decisions are by WebAssembly: a
// policy whose two evaluations differ shows it. (Here the difference is
// a native WebAssembly builtin's error, undefined rather than an error.)
func TestExplainStaysOnTopdown(t *testing.T) {
	src := "package lexgate\n\ndecision := {\"allow\": false, \"reasons\": [{\"code\": \"n\", \"message\": \"m\"}]} if to_number(input.action) > 0\n\ndecision := {\"allow\": false, \"reasons\": [{\"code\": \"w\", \"message\": \"m\"}]} if not to_number(input.action)\n"
	eng, err := newEngineOn(t, policy.EvaluatorWasm, map[string]string{"p.rego": src}, 0)
	if err != nil {
		t.Fatal(err)
	}
	in := policy.Input{Action: "send", Time: june, Source: alice}
	real, _ := eng.Decide(t.Context(), in)
	hypo, _ := eng.Decide(policy.Hypothetical(t.Context()), in)
	t.Logf("wasm: %v; hypothetical: %v", real.Codes(), hypo.Codes())
	if hypo.Codes()[0] != policy.CodeError {
		t.Errorf("a hypothetical decision = %v, want topdown's %s", hypo.Codes(), policy.CodeError)
	}
	if real.Allow {
		t.Errorf("Decide = %+v", real)
	}
}

// BenchmarkWasmInstanceMemory reports the memory of one WebAssembly
// module instance (its linear memory: the data documents, parsed, and the
// heap of a decision), with the shipped contracts and in the
// 1,000-organisation world.
func BenchmarkWasmInstanceMemory(b *testing.B) {
	for _, c := range []struct {
		name string
		fsys func(testing.TB) fs.FS
	}{
		{"shipped", func(testing.TB) fs.FS { return policies.FS }},
		{"orgs=1000,agreements=10000,matters=10000", bigWorld1000},
	} {
		b.Run(c.name, func(b *testing.B) {
			eng, err := policy.New(b.Context(), policy.Config{FS: c.fsys(b), Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			var size uint32
			heap0 := heapInUse()
			for b.Loop() {
				n, closeIt, err := eng.WasmInstanceMemory(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				size = n
				b.StopTimer()
				heap0 = heapInUse()
				closeIt()
				heap0 -= heapInUse()
				b.StartTimer()
			}
			b.ReportMetric(float64(size)/(1<<20), "linear-memory-MiB")
			b.ReportMetric(float64(heap0)/(1<<20), "heap-freed-on-close-MiB")
		})
	}
}

// heapInUse is the Go heap in use after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// TestWasmTimeoutOnShipped: on the shipped rules (compiled without
// termination checks), a decision over its deadline is still a refusal
// with CodeTimeout, and the pool keeps its bound.
func TestWasmTimeoutOnShipped(t *testing.T) {
	fsys := bigWorld1000(t)
	eng, err := policy.New(t.Context(), policy.Config{FS: fsys, Logger: quiet, Timeout: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	if eng.Evaluator() != policy.EvaluatorWasm {
		t.Fatalf("evaluator %q", eng.Evaluator())
	}
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	for i := range 20 {
		d, err := eng.Decide(t.Context(), bigInput(at, i))
		if !errors.Is(err, context.DeadlineExceeded) || d.Allow || d.Codes()[0] != policy.CodeTimeout {
			t.Fatalf("Decide = %+v, %v; want a refusal with %s", d, err, policy.CodeTimeout)
		}
	}
	if n := eng.WasmInstances(); n > runtime.GOMAXPROCS(0) {
		t.Errorf("%d instances open", n)
	}
}

// TestCloseClosesInstances: Close closes the idle WebAssembly instances;
// a decision after it still decides, with an instance of its own.
func TestCloseClosesInstances(t *testing.T) {
	eng, err := policy.New(t.Context(), policy.Config{FS: policies.FS, Logger: quiet, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if n := eng.WasmInstances(); n != 1 {
		t.Fatalf("%d instances open after New, want 1", n)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if n := eng.WasmInstances(); n != 0 {
		t.Errorf("%d instances open after Close", n)
	}
	if d, err := eng.Decide(t.Context(), send(june, nil, manila)); err != nil || !d.Allow {
		t.Errorf("Decide after Close = %+v, %v", d, err)
	}
	if n := eng.WasmInstances(); n != 0 {
		t.Errorf("%d instances open after a decision after Close", n)
	}
}
