package policy_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/policies"
	"go.yaml.in/yaml/v3"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// allowAll is a policy that allows everything.
const allowAll = `package lexgate

decision := {"allow": true, "reasons": [], "obligations": {"retention_days": 1, "max_downloads": 1, "expires_at": ""}}
`

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

func newEngine(t *testing.T, files map[string]string, timeout time.Duration) (*policy.Engine, error) {
	t.Helper()
	return newEngineOn(t, "", files, timeout)
}

func TestNewRefusesBrokenPolicies(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
	}{
		{"http.send", map[string]string{"net.rego": "package lexgate\n\ndecision := x if {\n\tx := http.send({\"method\": \"GET\", \"url\": \"https://evil.example\"})\n}\n"},
			[]string{"policy: net.rego:4:", "http.send is not allowed", "the network"}},
		{"opa.runtime", map[string]string{"env.rego": "package lexgate\n\ndecision := opa.runtime().env\n"},
			[]string{"env.rego:3:", "opa.runtime is not allowed"}},
		{"time.now_ns", map[string]string{"clock.rego": "package lexgate\n\nallow if time.now_ns() > 0\n"},
			[]string{"clock.rego:3:", "use input.time"}},
		{"syntax", map[string]string{"ok.rego": allowAll, "sub/bad.rego": "package lexgate\n\nallow if {\n\tinput.x ==\n}\n"},
			[]string{"policy: sub/bad.rego:", "rego_parse_error"}},
		{"type", map[string]string{"t.rego": "package lexgate\n\nallow if count(1) > 0\n"},
			[]string{"policy: t.rego:3:", "rego_type_error"}},
		{"bad json data", map[string]string{"p.rego": allowAll, "data/orgs.json": "{\"organisations\": "},
			[]string{"data/orgs.json"}},
		{"bad contract", map[string]string{"p.rego": allowAll, "data/a.json": `{"organisations": {"a.test": {"name": "A", "jurisdiction": "Germany"}},
			"agreements": [{"parties": ["a.test", "b.test"], "kind": "NDA", "signed": "2025-13-01"}]}`},
			[]string{"jurisdiction \"Germany\"", "party \"b.test\" is not in organisations", "signed \"2025-13-01\" is not a date"}},
		{"zero limits", map[string]string{"p.rego": allowAll, "data/a.json": `{"organisations": {"a.test": {"name": "A", "jurisdiction": "DE",
			"max_bundle_bytes": 0, "max_files": 0, "retention_days": 0, "max_downloads": 0}}}`},
			[]string{`organisations["a.test"]: max_bundle_bytes is 0: give a positive number of bytes, or leave it out for no limit`,
				`max_files is 0`, `retention_days is 0: give a number of days, or leave it out for the policy's default (30)`, `max_downloads is 0`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng, err := newEngine(t, tt.files, 0)
			if err == nil {
				t.Fatalf("New succeeded: %v", eng)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
			var perr *policy.Error
			if !errors.As(err, &perr) {
				t.Errorf("error is not a *policy.Error: %T", err)
			}
		})
	}
}

func TestNewConfig(t *testing.T) {
	if _, err := policy.New(t.Context(), policy.Config{}); err == nil || !strings.HasPrefix(err.Error(), "policy: ") {
		t.Errorf("New with no policy set: %v", err)
	}
	if _, err := policy.New(t.Context(), policy.Config{FS: mapFS(map[string]string{"p.rego": allowAll}), Timeout: -1}); err == nil {
		t.Error("New with a negative timeout succeeded")
	}
}

func TestUndefinedOrMalformedIsDenied(t *testing.T) {
	tests := map[string]struct {
		src string
		// topdownOnly: a set that WebAssembly refuses to compile at all
		// (no data.lexgate.decision to be its entrypoint).
		topdownOnly bool
	}{
		"undefined":        {src: "package lexgate\n\ndecision := x if x := input.nothing\n"},
		"no package":       {src: "package other\n\nallow := true\n", topdownOnly: true},
		"allow not bool":   {src: "package lexgate\n\ndecision := {\"allow\": \"yes\"}\n"},
		"allow missing":    {src: "package lexgate\n\ndecision := {\"reasons\": []}\n"},
		"reason no code":   {src: "package lexgate\n\ndecision := {\"allow\": true, \"reasons\": [{\"message\": \"hi\"}]}\n"},
		"bad expires":      {src: "package lexgate\n\ndecision := {\"allow\": true, \"obligations\": {\"expires_at\": \"tomorrow\"}}\n"},
		"negative":         {src: "package lexgate\n\ndecision := {\"allow\": true, \"obligations\": {\"max_downloads\": -1}}\n"},
		"decision is list": {src: "package lexgate\n\ndecision := [true]\n"},
	}
	for _, ev := range evaluators {
		for name, tc := range tests {
			if tc.topdownOnly && ev != policy.EvaluatorTopdown {
				continue
			}
			t.Run("evaluator="+ev+"/"+name, func(t *testing.T) {
				eng, err := newEngineOn(t, ev, map[string]string{"p.rego": tc.src}, 0)
				if err != nil {
					t.Fatal(err)
				}
				d, err := eng.Decide(t.Context(), policy.Input{Action: "send", Time: june, Source: alice})
				if err != nil {
					t.Fatal(err)
				}
				if d.Allow || len(d.Reasons) != 1 || d.Reasons[0].Code != policy.CodeUndefined {
					t.Errorf("Decide = %+v, want a refusal with %s", d, policy.CodeUndefined)
				}
			})
		}
	}
}

// TestDecidesWhatThePolicySays: on either evaluator, an allowing policy
// allows, with its obligations.
func TestDecidesWhatThePolicySays(t *testing.T) {
	for _, ev := range evaluators {
		t.Run("evaluator="+ev, func(t *testing.T) {
			eng, err := newEngineOn(t, ev, map[string]string{"p.rego": allowAll}, 0)
			if err != nil {
				t.Fatal(err)
			}
			d, err := eng.Decide(t.Context(), policy.Input{Action: "send", Time: june, Source: alice})
			if err != nil || !d.Allow || d.Obligations.RetentionDays != 1 {
				t.Errorf("Decide = %+v, %v", d, err)
			}
		})
	}
}

func TestDenyWithoutReasonGetsOne(t *testing.T) {
	eng, err := newEngine(t, map[string]string{"p.rego": "package lexgate\n\ndecision := {\"allow\": false}\n"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := eng.Decide(t.Context(), policy.Input{Action: "send", Time: june, Source: alice})
	if err != nil || d.Allow || len(d.Reasons) != 1 {
		t.Errorf("Decide = %+v, %v", d, err)
	}
}

func TestEvaluationErrorIsDenied(t *testing.T) {
	// Would allow, but a builtin fails: strict builtin errors make it an error.
	src := "package lexgate\n\ndecision := {\"allow\": true} if to_number(input.action) > 0\n"
	eng, err := newEngine(t, map[string]string{"p.rego": src}, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := eng.Decide(t.Context(), policy.Input{Action: "send", Time: june, Source: alice})
	if !errors.Is(err, policy.ErrEvaluation) || !strings.HasPrefix(err.Error(), "policy: ") {
		t.Errorf("err = %v, want ErrEvaluation", err)
	}
	if d.Allow || d.Codes()[0] != policy.CodeError {
		t.Errorf("Decide = %+v, want a refusal with %s", d, policy.CodeError)
	}
}

// TestTimeoutIsDenied: on either evaluator, a decision over its deadline
// is a refusal with CodeTimeout, twice (on WebAssembly the instance
// stopped is discarded: the next decision gets another).
func TestTimeoutIsDenied(t *testing.T) {
	// Allows, after about 10^8 steps.
	src := `package lexgate

decision := {"allow": true, "reasons": []} if {
	count([1 | some i in numbers.range(1, 10000); some j in numbers.range(1, 10000); i == j + input.risk_score]) >= 0
}
`
	for _, ev := range evaluators {
		t.Run("evaluator="+ev, func(t *testing.T) {
			eng, err := newEngineOn(t, ev, map[string]string{"slow.rego": src}, 20*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				start := time.Now()
				d, err := eng.Decide(t.Context(), policy.Input{Action: "send", Time: june, Source: alice})
				if !errors.Is(err, policy.ErrEvaluation) || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want ErrEvaluation and DeadlineExceeded", err)
				}
				if d.Allow || d.Codes()[0] != policy.CodeTimeout {
					t.Errorf("Decide = %+v, want a refusal with %s", d, policy.CodeTimeout)
				}
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("Decide took %v after a 20ms timeout", took)
				}
			}
		})
	}
}

func TestCancelledContextIsDenied(t *testing.T) {
	for _, ev := range evaluators {
		t.Run("evaluator="+ev, func(t *testing.T) {
			eng, err := newEngineOn(t, ev, map[string]string{"p.rego": allowAll}, 0)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			d, err := eng.Decide(ctx, policy.Input{Action: "send", Time: june, Source: alice})
			if !errors.Is(err, policy.ErrEvaluation) || d.Allow {
				t.Errorf("Decide = %+v, %v; want a refusal and ErrEvaluation", d, err)
			}
		})
	}
}

// TestReloadKeepsLastGoodPolicy: on either evaluator, a set that does not
// compile (or, on "wasm", not to WebAssembly) is rejected naming the file
// and the last good one keeps deciding; a good one replaces it.
func TestReloadKeepsLastGoodPolicy(t *testing.T) {
	for _, tc := range []struct {
		evaluator string
		bad       []string
	}{
		{policy.EvaluatorTopdown, []string{"package lexgate\n\ndecision := {\n"}},
		{policy.EvaluatorWasm, []string{"package lexgate\n\ndecision := {\n", "package lexgate\n\nx := 1\n"}},
	} {
		t.Run("evaluator="+tc.evaluator, func(t *testing.T) {
			dir := t.TempDir()
			write := func(src string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			decide := func(eng *policy.Engine) bool {
				t.Helper()
				d, err := eng.Decide(t.Context(), policy.Input{Action: "send", Time: june, Source: alice})
				if err != nil {
					t.Fatal(err)
				}
				return d.Allow
			}
			write(allowAll)
			eng, err := policy.New(t.Context(), policy.Config{Dir: dir, Logger: quiet, Evaluator: tc.evaluator})
			if err != nil {
				t.Fatal(err)
			}
			good := eng.Version()
			for _, bad := range tc.bad {
				write(bad)
				err = eng.Reload(t.Context())
				if err == nil {
					t.Errorf("Reload of %q succeeded", bad)
				} else if strings.HasSuffix(bad, "{\n") && !strings.Contains(err.Error(), filepath.Join(dir, "p.rego")+":") {
					t.Errorf("Reload of a broken policy: %v, want an error naming the file", err)
				}
				if !decide(eng) || eng.Version() != good || eng.Evaluator() != tc.evaluator {
					t.Error("the last good policy was not kept")
				}
			}
			write("package lexgate\n\ndecision := {\"allow\": false, \"reasons\": [{\"code\": \"closed\", \"message\": \"closed\"}]}\n")
			if err := eng.Reload(t.Context()); err != nil {
				t.Fatal(err)
			}
			if decide(eng) || eng.Version() == good {
				t.Error("the new policy is not in use")
			}
		})
	}
}

// TestConcurrentDecideAndReload: on either evaluator, decisions at once
// from many goroutines, during reloads, all decide, and the WebAssembly
// instances open never exceed GOMAXPROCS.
func TestConcurrentDecideAndReload(t *testing.T) {
	limit := runtime.GOMAXPROCS(0)
	for _, ev := range evaluators {
		t.Run("evaluator="+ev, func(t *testing.T) {
			eng, err := policy.New(t.Context(), policy.Config{FS: policies.FS, Timeout: time.Minute, Logger: quiet, Evaluator: ev})
			if err != nil {
				t.Fatal(err)
			}
			if eng.Evaluator() != ev {
				t.Fatalf("evaluator %q, want %q", eng.Evaluator(), ev)
			}
			var wg sync.WaitGroup
			for range max(8, 4*limit) {
				wg.Go(func() {
					for range 20 {
						if d, err := eng.Decide(t.Context(), send(june, nil, manila)); err != nil || !d.Allow {
							t.Errorf("Decide = %+v, %v", d, err)
						}
						if n := eng.WasmInstances(); n > limit {
							t.Errorf("%d instances open, more than GOMAXPROCS (%d)", n, limit)
						}
					}
				})
			}
			wg.Go(func() {
				for range 5 {
					if err := eng.Reload(t.Context()); err != nil {
						t.Error(err)
					}
				}
			})
			wg.Wait()
		})
	}
}

func TestCheck(t *testing.T) {
	fsys := mapFS(map[string]string{
		"a.rego":      "package lexgate\n\ndecision := x if {\n\tx := http.send({})\n}\n",
		"b.rego":      "package lexgate\n\nallow if no_such_function(1)\n",
		"c_test.rego": "package lexgate_test\n\ntest_x if {\n",
	})
	errs := policy.Check(t.Context(), fsys)
	all := errors.Join(errs...).Error()
	for _, want := range []string{"policy: a.rego:4:", "policy: b.rego:3:", "policy: c_test.rego:"} {
		if !strings.Contains(all, want) {
			t.Errorf("Check does not report %q:\n%s", want, all)
		}
	}
	if errs := policy.Check(t.Context(), mapFS(map[string]string{"p.rego": "package other\n\nx := 1\n"})); len(errs) != 1 {
		t.Errorf("Check of a policy without decision = %v, want one error", errs)
	}
}

func TestConfigYAML(t *testing.T) {
	var cfg policy.Config
	dec := yaml.NewDecoder(strings.NewReader("dir: /etc/lexgate/policies\ntimeout: 250ms\nevaluator: topdown\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Dir != "/etc/lexgate/policies" || cfg.Timeout != 250*time.Millisecond || cfg.Evaluator != policy.EvaluatorTopdown {
		t.Errorf("Config = %+v", cfg)
	}
}
