package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxExpiryMargin caps how long before its expiry the gateway's SVID counts
// as about to expire: a tenth of its lifetime, at most this.
const maxExpiryMargin = 5 * time.Minute

// readiness runs the /readyz checks and returns a line per failing one,
// each naming what is wrong and how to fix it; none means ready. /healthz
// stays a liveness check: a gateway that is not ready is still alive and
// recovers by itself once the SVID is renewed or a policy set loads.
func (g *Gateway) readiness(now time.Time) []string {
	var bad []string
	if msg := g.svidReadiness(now); msg != "" {
		bad = append(bad, msg)
	}
	for _, err := range g.id.FederationErrors(now) {
		bad = append(bad, "federation: "+err.Error())
	}
	if g.policy.Version() == "" {
		bad = append(bad, "policy: no policy set is loaded, so every request is refused: fix the files in policy.dir (the log says why they were rejected); they are reloaded on change and on SIGHUP")
	}
	for _, d := range []struct{ what, dir string }{
		{"audit", g.audit.Dir()},
		{"store", g.cfg.Store.Dir},
	} {
		if err := probeWritable(d.dir); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %s is not writable, so nothing can be recorded: %v", d.what, d.dir, err))
		}
	}
	return bad
}

// svidReadiness says what is wrong with the gateway's current SVID: missing,
// expired, or expiring within a tenth of its lifetime (at most
// maxExpiryMargin). "" when it is fine.
func (g *Gateway) svidReadiness(now time.Time) string {
	svid, err := g.id.GetX509SVID()
	if err != nil {
		return fmt.Sprintf("svid: the gateway has no X.509-SVID: %v", err)
	}
	leaf := svid.Certificates[0]
	margin := min(leaf.NotAfter.Sub(leaf.NotBefore)/10, maxExpiryMargin)
	const fix = "renew it (svid_cert and svid_key are reloaded when they change and on SIGHUP; with SPIRE, check the agent)"
	switch left := leaf.NotAfter.Sub(now); {
	case now.Before(leaf.NotBefore):
		return fmt.Sprintf("svid: the gateway's SVID %s is not valid before %s: check the clock or the issuer", svid.ID, leaf.NotBefore.UTC().Format(time.RFC3339))
	case left <= 0:
		return fmt.Sprintf("svid: the gateway's SVID %s expired at %s, so every handshake fails: %s", svid.ID, leaf.NotAfter.UTC().Format(time.RFC3339), fix)
	case left < margin:
		return fmt.Sprintf("svid: the gateway's SVID %s expires in %s (at %s): %s", svid.ID, left.Round(time.Second), leaf.NotAfter.UTC().Format(time.RFC3339), fix)
	}
	return ""
}

// probeWritable creates, writes and removes a small file in dir.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".readyz-*")
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte{'\n'})
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	for _, err := range []error{werr, cerr, rerr} {
		if err != nil {
			return err
		}
	}
	return nil
}

// Ready reports whether the gateway can serve requests; the error lists what
// is wrong, as /readyz does.
func (g *Gateway) Ready(context.Context) error {
	if bad := g.readiness(time.Now()); len(bad) > 0 {
		return fmt.Errorf("gateway: not ready:\n%s", strings.Join(bad, "\n"))
	}
	return nil
}

// serveReadyz answers 200 "ready" or 503 with one line per failing check.
func (g *Gateway) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	bad := g.readiness(time.Now())
	if len(bad) == 0 {
		io.WriteString(w, "ready\n")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, "not ready:\n"+strings.Join(bad, "\n")+"\n")
}

// registerSVIDMetrics exposes the current SVID's remaining lifetime, read
// at each scrape, so an alert fires before a renewal that did not happen
// turns into refused handshakes.
func (g *Gateway) registerSVIDMetrics(reg *prometheus.Registry) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lexgate_svid_remaining_seconds",
		Help: "Seconds until the gateway's current X.509-SVID expires (negative once expired, -1e9 without one).",
	}, func() float64 {
		svid, err := g.id.GetX509SVID()
		if err != nil {
			return -1e9
		}
		return time.Until(svid.Certificates[0].NotAfter).Seconds()
	}))
}
