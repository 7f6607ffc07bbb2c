package emu

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestPathRoot builds the real thing — two network namespaces joined by TUN
// devices through a Link — and checks the RTT and loss a UDP echo measures
// against the configured ones. It needs root, /dev/net/tun and ip(8): without
// them it skips, and so it does when the kernel refuses namespaces or TUN
// devices, except under CI=true.
func TestPathRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces and TUN devices)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip(8) (iproute2)")
	}
	const (
		oneWay = 20 * time.Millisecond
		loss   = 0.02
		probes = 1500
	)
	p, err := Setup(t.Context(), fmt.Sprintf("lexwan-t%d", os.Getpid()), Params{Delay: oneWay, Loss: loss}, Params{Delay: oneWay, Loss: loss})
	if err != nil {
		if os.Getenv("CI") != "true" {
			t.Skipf("this machine cannot build the path (run as root with namespaces and TUN allowed): %v", err)
		}
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat("/run/netns/" + p.A.Name); err == nil {
			t.Errorf("namespace %s left behind", p.A.Name)
		}
	}()
	got, err := Measure(t.Context(), p.A, p.B, probes, 500*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("configured 2×%v, %.0f%% loss each way; measured %v", oneWay, loss*100, got)
	if got.Min < 2*oneWay || got.Median > 2*oneWay+5*time.Millisecond {
		t.Errorf("RTT min %v median %v, want between %v and %v", got.Min, got.Median, 2*oneWay, 2*oneWay+5*time.Millisecond)
	}
	want := 1 - (1-loss)*(1-loss)
	if tol := 5 * math.Sqrt(want*(1-want)/probes); math.Abs(got.Loss()-want) > tol {
		t.Errorf("round-trip loss %.4f, want %.4f ± %.4f", got.Loss(), want, tol)
	}
	ab, ba := p.Stats()
	if ab.Forwarded == 0 || ba.Forwarded == 0 || ab.Overflow+ba.Overflow != 0 {
		t.Errorf("link stats a→b %+v, b→a %+v", ab, ba)
	}
}
