package transfer

import (
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
)

// TestReportChecksPerHour: reports may cause reportChecksPerHour checks of
// one transfer's stored copy in an hour, each transfer counted on its own;
// the next is refused until the hour that began with the first is over.
func TestReportChecksPerHour(t *testing.T) {
	var c reportChecks
	start := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	for i := range reportChecksPerHour {
		if ok, _ := c.take("a", start.Add(time.Duration(i)*time.Minute)); !ok {
			t.Fatalf("check %d of the hour refused", i+1)
		}
	}
	ok, until := c.take("a", start.Add(30*time.Minute))
	if ok || !until.Equal(start.Add(time.Hour)) {
		t.Fatalf("check %d of the hour: allowed %v, until %v; want refused until %v", reportChecksPerHour+1, ok, until, start.Add(time.Hour))
	}
	if ok, _ := c.take("b", start.Add(30*time.Minute)); !ok {
		t.Error("another transfer's first check refused")
	}
	if ok, _ := c.take("a", start.Add(time.Hour)); !ok {
		t.Error("a check after the hour refused")
	}
}

// TestReportIntactVerdicts: a report found intact stands for reportRecheck
// (the same size and SHA-256 only), and what reports cost is forgotten once
// it says nothing: another transfer's hour over and no verdict standing.
func TestReportIntactVerdicts(t *testing.T) {
	var c reportChecks
	start := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	rep := api.IntegrityReport{Size: 10, SHA256: "ab"}
	if ok, _ := c.take("a", start); !ok {
		t.Fatal("first check refused")
	}
	c.foundIntact("a", rep, start)
	if !c.wasIntact("a", rep, start.Add(reportRecheck-time.Second)) {
		t.Error("the same report within reportRecheck is not answered by the verdict")
	}
	if c.wasIntact("a", api.IntegrityReport{Size: 10, SHA256: "cd"}, start) || c.wasIntact("b", rep, start) {
		t.Error("a verdict answers another report")
	}
	if c.wasIntact("a", rep, start.Add(reportRecheck)) {
		t.Error("a verdict stands after reportRecheck")
	}
	c.take("b", start.Add(59*time.Minute))
	c.foundIntact("b", rep, start.Add(59*time.Minute))
	c.take("c", start.Add(time.Hour))
	if _, ok := c.by["a"]; ok {
		t.Error("transfer a's entry kept after its hour, with no verdict standing")
	}
	if _, ok := c.by["b"]; !ok {
		t.Error("transfer b's entry dropped within its hour")
	}
	c.take("c", start.Add(2*time.Hour))
	if len(c.by) != 1 {
		t.Errorf("%d entries after every other hour ended, want c's alone", len(c.by))
	}
}
