package policy_test

// The policy library compiled by OPA to WebAssembly and run by wazero (a Go
// WebAssembly runtime), beside the engine's OPA interpreter (topdown): an
// evaluation of the compiled form as the way to a decision p99 under 1 ms
// (docs/performance.md, Policy decisions). The gateway does not use it.
// TestWasmDecidesAsTopdown holds the two to the same decisions;
// BenchmarkWasmDecide times the cases of BenchmarkDecide.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/lexgate/lexgate/gateway/internal/heapfloor"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/policies"
)

// wasmEntrypoint is the rule the gateway asks for.
const wasmEntrypoint = "lexgate/decision"

// wasmPolicy is a policy set compiled to WebAssembly, instantiated once
// with its data documents in the module's memory. Not safe for concurrent
// use: a module instance runs one evaluation at a time.
type wasmPolicy struct {
	mod        api.Module
	builtins   map[int32]topdown.BuiltinFunc // the builtins the module leaves to its host
	entrypoint int32
	data       uint32 // the data documents, parsed in the module's memory
	base       uint32 // the module's heap after the data: each evaluation starts there
	inBuiltins time.Duration
	// fns are the module's functions called, each looked up once: wazero
	// gives each api.Function its own call stack, made on its first call.
	fns map[string]api.Function
}

// newWasmPolicy compiles the .rego files of fsys (without the tests) to
// WebAssembly and instantiates them with the data documents of fsys.
func newWasmPolicy(tb testing.TB, fsys fs.FS) *wasmPolicy {
	tb.Helper()
	ctx := context.Background()
	b := &bundle.Bundle{Data: map[string]any{}}
	names, err := fs.Glob(fsys, "*.rego")
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			tb.Fatal(err)
		}
		m, err := ast.ParseModuleWithOpts(name, string(raw), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			tb.Fatal(err)
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: name, Path: name, Raw: raw, Parsed: m})
	}
	c := compile.New().WithTarget(compile.TargetWasm).WithEntrypoints(wasmEntrypoint).WithBundle(b)
	if err := c.Build(ctx); err != nil {
		tb.Fatalf("compiling the policy set to WebAssembly: %v", err)
	}
	wasm := c.Bundle().WasmModules[0].Raw

	// OPA's modules import their memory from "env", beside the host
	// functions; wazero's host modules cannot export a memory, so the
	// memory is imported from a module of its own ("mem": the same length,
	// the binary keeps its layout).
	memImport := []byte("\x03env\x06memory\x02")
	i := bytes.Index(wasm, memImport)
	if i < 0 {
		tb.Fatal("the module does not import env.memory")
	}
	wasm = slices.Clone(wasm)
	copy(wasm[i+1:], "mem")
	minPages := wasm[i+len(memImport)+1] // limits: flags 0 (no maximum), then the minimum (< 128: one byte)
	memModule := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x05, 0x03, 0x01, 0x00, minPages, // a memory of minPages pages, no maximum
		0x07, 0x0a, 0x01, 0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00} // exported as "memory"

	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	tb.Cleanup(func() { r.Close(ctx) })
	if _, err := r.InstantiateWithConfig(ctx, memModule, wazero.NewModuleConfig().WithName("mem")); err != nil {
		tb.Fatal(err)
	}
	w := &wasmPolicy{fns: map[string]api.Function{}}
	env := r.NewHostModuleBuilder("env")
	env.NewFunctionBuilder().WithFunc(func(_ context.Context, _ api.Module, addr uint32) {
		panic("opa_abort: " + string(w.cstring(addr)))
	}).Export("opa_abort")
	env.NewFunctionBuilder().WithFunc(func(context.Context, api.Module, uint32) {}).Export("opa_println")
	env.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _ uint32) uint32 {
		return w.builtin(ctx, id)
	}).Export("opa_builtin0")
	env.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a uint32) uint32 {
		return w.builtin(ctx, id, a)
	}).Export("opa_builtin1")
	env.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a, b uint32) uint32 {
		return w.builtin(ctx, id, a, b)
	}).Export("opa_builtin2")
	env.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a, b, c uint32) uint32 {
		return w.builtin(ctx, id, a, b, c)
	}).Export("opa_builtin3")
	env.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a, b, c, d uint32) uint32 {
		return w.builtin(ctx, id, a, b, c, d)
	}).Export("opa_builtin4")
	if _, err := env.Instantiate(ctx); err != nil {
		tb.Fatal(err)
	}
	if w.mod, err = r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName("policy").WithStartFunctions()); err != nil {
		tb.Fatal(err)
	}

	var ids, entrypoints map[string]int32
	if err := json.Unmarshal(w.dump(ctx, w.call(ctx, "builtins")), &ids); err != nil {
		tb.Fatal(err)
	}
	w.builtins = map[int32]topdown.BuiltinFunc{}
	for name, id := range ids {
		if w.builtins[id] = topdown.GetBuiltin(name); w.builtins[id] == nil {
			tb.Fatalf("the module needs the builtin %s, which OPA does not have", name)
		}
	}
	if err := json.Unmarshal(w.dump(ctx, w.call(ctx, "entrypoints")), &entrypoints); err != nil {
		tb.Fatal(err)
	}
	w.entrypoint = entrypoints[wasmEntrypoint]
	w.data = w.parse(ctx, dataDocuments(tb, fsys))
	w.base = w.call(ctx, "opa_heap_ptr_get")
	return w
}

// dataDocuments is the data of fsys as the engine loads it: each file of
// data/ merged into data.data.
func dataDocuments(tb testing.TB, fsys fs.FS) []byte {
	tb.Helper()
	names, err := fs.Glob(fsys, "data/*.json")
	if err != nil {
		tb.Fatal(err)
	}
	data := map[string]any{}
	for _, name := range names {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			tb.Fatal(err)
		}
		var doc map[string]any
		if err := util.UnmarshalJSON(raw, &doc); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		for k, v := range doc {
			data[k] = v
		}
	}
	b, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// decide evaluates the decision on input (the JSON of an enriched input)
// and returns the decision document as JSON.
func (w *wasmPolicy) decide(ctx context.Context, input []byte) ([]byte, error) {
	mem := w.mod.Memory()
	end := w.base + uint32(len(input))
	if end > mem.Size() {
		if _, ok := mem.Grow((end-mem.Size())/65536 + 1); !ok {
			return nil, fmt.Errorf("the module's memory cannot grow to %d bytes", end)
		}
	}
	mem.Write(w.base, input)
	// opa_eval (ABI 1.2): the input at base, the evaluation's heap after it.
	res, err := w.fn("opa_eval").Call(ctx, 0, uint64(w.entrypoint), uint64(w.data),
		uint64(w.base), uint64(len(input)), uint64(end), 0)
	if err != nil {
		return nil, err
	}
	var rs []struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(w.cstring(uint32(res[0])), &rs); err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("%d results", len(rs))
	}
	return rs[0].Result, nil
}

// builtin runs the builtin id that the module leaves to its host (sprintf
// and the time functions) with OPA's own implementation, its operands and
// its result passed as JSON.
func (w *wasmPolicy) builtin(ctx context.Context, id uint32, args ...uint32) uint32 {
	start := time.Now()
	defer func() { w.inBuiltins += time.Since(start) }()
	ops := make([]*ast.Term, len(args))
	for i, a := range args {
		var x any
		if err := util.UnmarshalJSON(w.dump(ctx, a), &x); err != nil {
			panic(err)
		}
		v, err := ast.InterfaceToValue(x)
		if err != nil {
			panic(err)
		}
		ops[i] = ast.NewTerm(v)
	}
	var out *ast.Term
	err := w.builtins[int32(id)](topdown.BuiltinContext{Context: ctx}, ops, func(t *ast.Term) error {
		out = t
		return nil
	})
	if err != nil || out == nil {
		return 0 // undefined, as topdown without strict errors
	}
	x, err := ast.JSON(out.Value)
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(x)
	if err != nil {
		panic(err)
	}
	return w.parse(ctx, b)
}

func (w *wasmPolicy) fn(name string) api.Function {
	f, ok := w.fns[name]
	if !ok {
		f = w.mod.ExportedFunction(name)
		w.fns[name] = f
	}
	return f
}

func (w *wasmPolicy) call(ctx context.Context, name string, args ...uint64) uint32 {
	r, err := w.fn(name).Call(ctx, args...)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	return uint32(r[0])
}

func (w *wasmPolicy) cstring(addr uint32) []byte {
	mem := w.mod.Memory()
	b, _ := mem.Read(addr, mem.Size()-addr)
	return b[:bytes.IndexByte(b, 0)]
}

// dump is the value at addr in the module's memory, as JSON.
func (w *wasmPolicy) dump(ctx context.Context, addr uint32) []byte {
	return w.cstring(w.call(ctx, "opa_json_dump", uint64(addr)))
}

// parse puts the JSON value b in the module's memory and returns its address.
func (w *wasmPolicy) parse(ctx context.Context, b []byte) uint32 {
	addr := w.call(ctx, "opa_malloc", uint64(len(b)))
	w.mod.Memory().Write(addr, b)
	return w.call(ctx, "opa_json_parse", uint64(addr), uint64(len(b)))
}

// wasmDecision is the decision document as the module returns it.
type wasmDecision struct {
	Allow       bool            `json:"allow"`
	Reasons     []policy.Reason `json:"reasons"`
	Notes       []policy.Reason `json:"notes"`
	Obligations struct {
		RetentionDays int    `json:"retention_days"`
		MaxDownloads  int    `json:"max_downloads"`
		ExpiresAt     string `json:"expires_at"`
	} `json:"obligations"`
}

// TestWasmDecidesAsTopdown requires the compiled library to decide as the
// engine does: the same allow, reasons (messages included), notes and
// obligations, with the shipped contracts, in the 1,000-organisation
// world, and for every input of the decision matrix (TestDecisionMatrix)
// in the fixture world of the Rego unit tests.
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
			eng, err := policy.New(t.Context(), policy.Config{FS: fsys, Timeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			w := newWasmPolicy(t, fsys)
			allowed := 0
			for i, in := range c.inputs {
				want, err := eng.Decide(t.Context(), in)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := json.Marshal(eng.Enrich(in))
				if err != nil {
					t.Fatal(err)
				}
				out, err := w.decide(t.Context(), raw)
				if err != nil {
					t.Fatalf("input %d: %v", i, err)
				}
				var got wasmDecision
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatalf("input %d: %v: %s", i, err, out)
				}
				var expires time.Time
				if got.Obligations.ExpiresAt != "" {
					if expires, err = time.Parse(time.RFC3339Nano, got.Obligations.ExpiresAt); err != nil {
						t.Fatal(err)
					}
				}
				gotObligations := policy.Obligations{RetentionDays: got.Obligations.RetentionDays, MaxDownloads: got.Obligations.MaxDownloads, ExpiresAt: expires}
				if got.Allow != want.Allow || !reflect.DeepEqual(nonEmpty(got.Reasons), nonEmpty(want.Reasons)) ||
					!reflect.DeepEqual(nonEmpty(got.Notes), nonEmpty(want.Notes)) || !gotObligations.ExpiresAt.Equal(want.Obligations.ExpiresAt) ||
					gotObligations.RetentionDays != want.Obligations.RetentionDays || gotObligations.MaxDownloads != want.Obligations.MaxDownloads {
					t.Errorf("input %d (%s): WebAssembly decided\n%s\nthe engine\n%+v", i, raw, out, want)
				}
				if want.Allow {
					allowed++
				}
			}
			t.Logf("%d decisions alike, %d of them allowed", len(c.inputs), allowed)
		})
	}
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

// BenchmarkWasmDecide times the cases of BenchmarkDecide (gc=gateway)
// with the library compiled to WebAssembly, each input enriched by the
// engine beforehand (as the gateway would, outside the timed call). It
// reports the time spent in the builtins the module calls back
// (in-builtins-µs/op: sprintf and the time functions, passed as JSON) and
// the module's memory.
func BenchmarkWasmDecide(b *testing.B) {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	bundle := &policy.Bundle{Matter: "HL-2026-0050", Labels: []string{"privileged", "personal-data"}, Regions: []string{"DE"}, Size: 1 << 20, FileCount: 10}
	for _, c := range []struct {
		name  string
		fsys  func(testing.TB) fs.FS
		input func(int) policy.Input
	}{
		{"orgs=1000,agreements=10000,matters=10000,gc=gateway", bigWorld1000, func(i int) policy.Input { return bigInput(at, i) }},
		{"shipped,gc=gateway", func(testing.TB) fs.FS { return policies.FS }, func(int) policy.Input {
			return policy.Input{Action: "send", Time: at, Bundle: bundle, Source: alice,
				Destinations: []policy.Party{manila, {ID: "spiffe://bogota-lpo.example/site/x"}}}
		}},
		{"shipped,allowed,gc=gateway", func(testing.TB) fs.FS { return policies.FS }, func(int) policy.Input {
			return policy.Input{Action: "send", Time: at, Source: alice, Destinations: []policy.Party{manila},
				Bundle: &policy.Bundle{Matter: "HL-2026-0042", Labels: []string{"privileged"}, Size: 1 << 20, FileCount: 10}}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			defer heapfloor.Start(heapfloor.Default)()
			fsys := c.fsys(b)
			eng, err := policy.New(b.Context(), policy.Config{FS: fsys, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			w := newWasmPolicy(b, fsys)
			inputs := make([][]byte, 1000)
			for i := range inputs {
				if inputs[i], err = json.Marshal(eng.Enrich(c.input(i))); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			cpu0 := cpuTime(b)
			w.inBuiltins = 0
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if _, err := w.decide(b.Context(), inputs[i%len(inputs)]); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			cpu := cpuTime(b) - cpu0
			slices.Sort(lat)
			b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/op")
			b.ReportMetric(float64(w.inBuiltins.Microseconds())/float64(len(lat)), "in-builtins-µs/op")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			// The module's memory (its data, parsed, and its heap): each
			// instance has its own, and an instance decides one at a time.
			b.ReportMetric(float64(w.mod.Memory().Size())/(1<<20), "module-memory-MiB")
		})
	}
}
