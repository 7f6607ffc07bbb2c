package gateway_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowed lists, for each lexgate package, the lexgate packages it may import
// (outside its tests). Dependencies point one way: cmd → cli/gateway → fronts →
// transfer → leaves. Leaves import no sibling; the CLI never imports the core,
// the fronts or the store. A package missing here fails the test: place it on purpose.
var allowed = map[string][]string{
	"certs": {},
	// crashpoint is a test hook with no imports (empty without the "crashpoints"
	// build tag); the store and the core call it at the steps a crash test kills.
	"gateway/internal/crashpoint": {},
	"policies":                    {},
	// heapfloor sets the process-wide GC percentage: only the gateway's
	// serve command (and the policy benchmarks, in tests) call it.
	"gateway/internal/heapfloor": {},
	"gateway/api":                {},
	"gateway/identity":           {},
	// policy compares a policy set's rules with the shipped library's
	// (policy.evaluator auto).
	"gateway/policy":   {"policies"},
	"gateway/store":    {"gateway/internal/crashpoint", "gateway/directio"},
	"gateway/notify":   {"gateway/store"},
	"gateway/siem":     {},
	"gateway/directio": {},
	"gateway/tcptune":  {},
	"gateway/audit":    {},
	"gateway/agecheck": {},
	// yamlcheck names unknown config keys (with a suggestion) for lexgate and lex.
	"gateway/yamlcheck": {},
	// buildinfo is --version for lex and lexgate.
	"gateway/buildinfo":           {},
	"gateway/transfer":            {"gateway/api", "gateway/policy", "gateway/store", "gateway/audit", "gateway/identity", "gateway/internal/crashpoint", "gateway/agecheck", "gateway/risk"},
	"gateway/httpapi":             {"gateway/api", "gateway/transfer", "gateway/identity"},
	"gateway/sftpfront":           {"gateway/api", "gateway/transfer", "gateway/identity"},
	"gateway":                     {"certs", "policies", "gateway/api", "gateway/identity", "gateway/policy", "gateway/store", "gateway/audit", "gateway/transfer", "gateway/httpapi", "gateway/sftpfront", "gateway/tcptune", "gateway/internal/heapfloor", "gateway/yamlcheck", "gateway/buildinfo", "gateway/notify", "gateway/siem", "gateway/risk"},
	"gateway/gatewaytest":         {"certs", "gateway", "gateway/api", "gateway/audit", "gateway/identity", "gateway/policy", "gateway/store", "gateway/sftpfront", "policies"},
	"gateway/battery":             {}, // test-only: its tests drive a whole gateway, and lex as a client
	"gateway/crashtest":           {}, // test-only: its tests kill a real lexgate process and restart it
	"cli":                         {"gateway/api", "certs", "gateway/audit", "gateway/policy", "gateway/directio", "gateway/tcptune", "gateway/yamlcheck", "gateway/buildinfo", "internal/agestream"},
	"gateway/spiretest":           {},                    // runs real SPIRE servers and agents for tests; its tests drive a whole gateway and lex
	"gateway/ssotest":             {"gateway/spiretest"}, // runs Ory Hydra and step-ca for tests (built with spiretest.Build); its tests drive lex login
	"cmd/lex":                     {"cli", "cmd/internal/cpuprof"},
	"cmd/lexgate":                 {"gateway", "cmd/internal/cpuprof"},
	"cmd/lexdemo":                 {"gateway", "gateway/sftpfront", "internal/engines"}, // writes its lexgate.yaml with gateway.Config.Marshal
	"cmd/lexbench":                {"cmd/internal/benchkit", "gateway/directio", "internal/engines"},
	"cmd/lexload":                 {"certs", "cli", "gateway", "gateway/api", "cmd/internal/benchkit", "gateway/store", "internal/engines"},
	"cmd/lexwan":                  {"cmd/lexwan/emu", "cmd/internal/benchkit"},
	"cmd/internal/benchkit":       {"gateway"}, // GatewayConfig writes with gateway.Config.Marshal
	"cmd/internal/cpuprof":        {},
	"cmd/lexwan/emu":              {},
	"gateway/internal/enginetest": {"internal/engines"}, // test-only: internal/engines for tests (skip, or fail under CI=true, when missing; stop at the test's end)
	"gateway/risk":                {},
	// agestream opens age payloads for lex receive without age's per-chunk
	// allocation and copies; age itself still parses headers and unwraps keys.
	"internal/agestream":           {},
	"cmd/lexcluster":               {"internal/engines"},
	"internal/engines":             {}, // starts PostgreSQL, MariaDB and versitygw for enginetest, lexload and the cluster demo; FreePort for the tools
	"gateway/internal/rsyslogtest": {}, // test-only: runs rsyslogd, the SIEM tests' syslog receiver
}

func TestDependencyRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/lexgate/lexgate/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/lexgate/lexgate/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		ok, known := allowed[pkg]
		if !known {
			t.Errorf("package %s has no entry in the dependency rules", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			if dep := strings.TrimPrefix(imp, mod); !slices.Contains(ok, dep) {
				t.Errorf("%s imports %s, which the dependency rules forbid", pkg, dep)
			}
		}
	}
}
