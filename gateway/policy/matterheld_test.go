package policy_test

import (
	"testing"

	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/policies"
)

// TestMatterHeld reads the registry's legal hold flag from the shipped data:
// HL-2026-0100 is held, HL-2026-0042 is not, an unknown matter is not; and
// with no policy set loaded every matter counts as held (the sweeper must not
// delete what it cannot check).
func TestMatterHeld(t *testing.T) {
	e, err := policy.New(t.Context(), policy.Config{FS: policies.FS, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for matter, want := range map[string]bool{"HL-2026-0100": true, "HL-2026-0042": false, "NO-SUCH-MATTER": false} {
		if got := e.MatterHeld(matter); got != want {
			t.Errorf("MatterHeld(%q) = %v, want %v", matter, got, want)
		}
	}

	// A policy set that does not load: Start returns an engine that refuses
	// everything, and holds every matter.
	broken, _ := policy.Start(t.Context(), policy.Config{FS: mapFS(map[string]string{"p.rego": "package lexgate\nthis is not rego"}), Logger: quiet})
	if broken == nil {
		t.Fatal("Start returned no engine for a broken set")
	}
	defer broken.Close()
	if !broken.MatterHeld("HL-2026-0042") {
		t.Error("with no policy loaded, MatterHeld = false, want true")
	}
}
