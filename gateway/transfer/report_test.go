package transfer

import (
	"testing"
	"time"
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
