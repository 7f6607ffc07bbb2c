package battery_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// transports are the API's two listeners on one port.
var transports = []struct {
	name string
	quic bool
}{{"quic", true}, {"tcp", false}}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// tail returns the log lines after the first fromLine ones.
func tail(s string, fromLine int) string {
	lines := strings.SplitN(s, "\n", fromLine+1)
	return lines[len(lines)-1]
}

func lines(s string) int { return strings.Count(s, "\n") }

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf("timed out waiting for %s", what)
}

func loadCA(t *testing.T, env *gatewaytest.Env, td string) *certs.CA {
	t.Helper()
	ca, err := certs.LoadCA(env.PKI + "/" + td)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mint(t *testing.T, ca *certs.CA, id string, o certs.SVIDOptions) *x509svid.SVID {
	t.Helper()
	var sid spiffeid.ID
	if id != "" {
		sid = spiffeid.RequireFromString(id)
	}
	s, err := ca.MintSVID(sid, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// quiet is what must not change when a request is refused before any handler:
// the store and the audit log.
type quiet struct {
	env    *gatewaytest.Env
	stats  any
	events int
}

func snapshot(env *gatewaytest.Env) quiet {
	return quiet{env: env, stats: env.StoreStats(), events: len(env.AuditEvents())}
}

// unchanged fails the test if the store or the audit log changed since q.
func (q quiet) unchanged(t *testing.T) {
	t.Helper()
	if s := q.env.StoreStats(); s != q.stats {
		t.Errorf("store changed: before %+v, after %+v", q.stats, s)
	}
	if n := len(q.env.AuditEvents()); n != q.events {
		t.Errorf("audit log grew from %d to %d entries", q.events, n)
	}
	if f := q.env.SpoolFiles(); len(f) != 0 {
		t.Errorf("spool holds %v", f)
	}
}

// newRecipient returns a fresh post-quantum age recipient.
func newRecipient(t *testing.T) string {
	t.Helper()
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient().String()
}

// memory is what the test process runs and holds while the gateway is idle:
// its goroutines and heap in use. Every row's test takes it once the gateway
// has started and checks, when its rows are done, that the refusals left
// nothing running or held behind.
type memory struct {
	env        *gatewaytest.Env
	goroutines int
	heap       uint64
}

// memoryNow closes the clients' connections, waits until the goroutine
// count holds still (the gateway's own workers have started) and records it
// with the heap in use.
func memoryNow(t *testing.T, env *gatewaytest.Env) memory {
	t.Helper()
	env.CloseClients()
	return memory{env: env, goroutines: settledGoroutines(t, env), heap: heapInUse()}
}

// settledGoroutines returns the number of goroutines once the gateway has
// started its own (it logs "lexgate serving" after its last go statement) and
// the count has held still for 100 ms (or after 2 s). Counted before that,
// on a busy machine, the baseline misses gateway workers not started yet,
// and goroutinesSettle reports them as leaked.
func settledGoroutines(t *testing.T, env *gatewaytest.Env) int {
	t.Helper()
	waitFor(t, func() bool { return strings.Contains(env.Logs(), `"msg":"lexgate serving"`) }, "the gateway to serve")
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

// back fails the test unless, with the clients' connections closed, the
// goroutines come back to within 4 of m and the heap in use within 16 MiB.
func (m memory) back(t *testing.T) {
	t.Helper()
	m.env.CloseClients()
	goroutinesSettle(t, m.goroutines, 4)
	if h := heapInUse(); h > m.heap+16<<20 {
		t.Errorf("heap in use grew from %d to %d bytes over the rows", m.heap, h)
	}
}
