package gateway_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/internal/heapfloor"
)

// allowEverything is a policy that decides nothing: the floor of the gate's cost.
const allowEverything = `package lexgate

decision := {"allow": true, "reasons": [], "obligations": {"retention_days": 30, "max_downloads": 5, "expires_at": ""}}
`

// BenchmarkPolicyGate measures what the policy gate adds to a request through
// the whole gateway (mTLS over TCP, HTTP/2): the same requests under the policy
// library (embedded defaults) and under a policy that allows everything. The
// difference between the two is the gate's overhead. GET /v1/inbox is one
// list_inbox decision; POST /v1/policy/explain is an explain decision plus a
// send decision (privileged EU personal data to Manila). Reports p50/p99,
// under the garbage collection setting lexgate serve makes (a heap floor,
// gc.min_heap_mib).
func BenchmarkPolicyGate(b *testing.B) {
	defer heapfloor.Start(heapfloor.Default)()
	floor := b.TempDir()
	if err := os.WriteFile(filepath.Join(floor, "allow.rego"), []byte(allowEverything), 0o644); err != nil {
		b.Fatal(err)
	}
	quietLogs := gatewaytest.WithConfig(func(c *gateway.Config) { c.Log.Level = "error"; c.Policy.DecisionLog = "off" })
	for _, set := range []struct {
		name string
		opts []gatewaytest.Option
	}{
		{"library", []gatewaytest.Option{quietLogs}},
		{"allow-all", []gatewaytest.Option{quietLogs, gatewaytest.WithPolicyDir(floor)}},
	} {
		env := gatewaytest.Start(b, append(set.opts, gatewaytest.WithoutQUIC())...)
		c := newAPIClient(b, env, gatewaytest.Alice, false)
		explain := api.ExplainRequest{From: gatewaytest.Alice, To: []string{gatewaytest.Team},
			Labels: []string{"privileged", "personal-data"}, Regions: []string{"DE"}, At: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)}
		for _, route := range []struct {
			name string
			do   func() int
		}{
			{"inbox", func() int { st, _, _ := c.do("GET", api.PathInbox, nil, nil); return st }},
			{"explain", func() int { st, _ := c.json("POST", api.PathPolicyExplain, explain); return st }},
		} {
			b.Run(set.name+"/"+route.name, func(b *testing.B) {
				var lat []time.Duration
				for b.Loop() {
					start := time.Now()
					if st := route.do(); st != http.StatusOK {
						b.Fatalf("status %d", st)
					}
					lat = append(lat, time.Since(start))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}
