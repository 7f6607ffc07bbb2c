package siem_test

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/siem"
)

// TestOTLPGetsEveryDecision: a gateway exporting to an OTLP/HTTP receiver
// that refuses its first two requests delivers every decision of a run —
// across a gateway restart — once, in order, with the mapped attributes,
// and the audit log's entries with no gap or repeat.
func TestOTLPGetsEveryDecision(t *testing.T) {
	var mu sync.Mutex
	var decisions, audits []string
	requests := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collogs.ExportLogsServiceRequest
		if r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("X-Tenant") != "harbor" {
			t.Errorf("request %s %v", r.URL.Path, r.Header)
		}
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("not an ExportLogsServiceRequest: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if requests++; requests <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					attrs := map[string]string{}
					for _, kv := range lr.Attributes {
						attrs[kv.Key] = kv.Value.GetStringValue()
					}
					switch lr.EventName {
					case "lexgate.decision":
						decisions = append(decisions, attrs["lexgate.decision_id"])
						if attrs["lexgate.allow"] == "false" && (attrs["lexgate.reasons"] != "hipaa.no_baa" || lr.SeverityText != "NOTICE") {
							t.Errorf("refusal record %v", lr)
						}
					case "lexgate.audit":
						audits = append(audits, attrs["lexgate.audit_index"])
					}
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "otlp-ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)

	env := gatewaytest.Start(t, gatewaytest.WithConfig(func(c *gateway.Config) {
		c.SIEM = siem.Config{OTLP: siem.OTLPConfig{Endpoint: srv.URL + "/v1/logs", CAFile: ca, Headers: map[string]string{"X-Tenant": "harbor"}},
			PollInterval: 20 * time.Millisecond}
	}))
	run := func() {
		alice, team := env.NewClient(gatewaytest.Alice, false), env.NewClient(gatewaytest.Team, false)
		for i := range 4 {
			labels := []string{}
			if i%2 == 1 {
				labels = []string{"health"}
			}
			ct := gatewaytest.Encrypt(t, []byte("x"), team.Register().Recipient())
			alice.Create([]string{gatewaytest.Team}, labels, ct, nil)
		}
	}
	run()
	env.Restart()
	run()
	env.Stop()
	want := logged(t, filepath.Join(env.Config.Store.Dir, "decisions.log"))
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(decisions, ",") != strings.Join(want, ",") {
		t.Errorf("OTLP received %d decisions, the log holds %d; they differ:\ngot  %v\nwant %v", len(decisions), len(want), decisions, want)
	}
	for i, idx := range audits {
		if idx != strconv.Itoa(i) {
			t.Fatalf("audit entries received: %v; want 0, 1, 2, … with no gap or repeat", audits)
		}
	}
	if len(audits) == 0 || requests < 3 {
		t.Errorf("%d audit entries in %d requests", len(audits), requests)
	}
}
