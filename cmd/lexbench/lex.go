package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lexgate/lexgate/cmd/internal/benchkit"
)

// The two dev-PKI identities of the bench, as in the demo: alice
// (spiffe://harbor-law.example/paralegal/alice) sends to the review team.
const (
	aliceSVID = "harbor-law.example/paralegal-alice"
	team      = "spiffe://manila-lpo.example/site/review-team"
	teamSVID  = "manila-lpo.example/site-review-team"
	matter    = "BENCH-1"
)

// transports are the lex transports measured, each through a fresh gateway.
var transports = []string{"quic", "tcp"}

// benchLex mints a dev PKI, then for each transport starts a fresh gateway (so its
// VmHWM covers that transport alone), registers the review team's age key and
// times lex send, lex receive and lex ack of the test file.
func (b *bench) benchLex(ctx context.Context) error {
	pki := b.path("pki")
	if _, err := runTimed(ctx, "", b.lexgate, "certs", "dev", "--out", pki); err != nil {
		return err
	}
	for i, t := range transports {
		if err := b.benchTransport(ctx, t, pki, i == 0); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	return nil
}

// benchTransport runs every lex measurement over transport t through a fresh gateway.
func (b *bench) benchTransport(ctx context.Context, t, pki string, keygen bool) error {
	g, err := b.startGateway(ctx, b.path("gateway-"+t), pki)
	if err != nil {
		return err
	}
	b.logf("gateway for %s on %s (pid %d, log %s)", t, g.addr, g.pid(), g.log)
	aliceCfg, err := b.clientConfig(g, "alice", t, pki, aliceSVID)
	if err != nil {
		return err
	}
	teamCfg, err := b.clientConfig(g, "review-team", t, pki, teamSVID)
	if err != nil {
		return err
	}
	if keygen {
		if _, err := runTimed(ctx, "", b.lex, "--config", teamCfg, "keygen"); err != nil {
			return err
		}
	}
	if _, err := runTimed(ctx, "", b.lex, "--config", teamCfg, "--transport", t, "register"); err != nil {
		return err
	}
	stats := &gatewayStats{Transport: t}
	b.rep.Gateways = append(b.rep.Gateways, stats)
	for i := range b.opt.runs {
		id, err := b.send(ctx, g, t, aliceCfg, i, stats)
		if err != nil {
			return err
		}
		if err := b.receive(ctx, g, t, teamCfg, id, i, stats); err != nil {
			return err
		}
		if _, err := runTimed(ctx, "", b.lex, "--config", teamCfg, "--transport", t, "ack", id); err != nil {
			return err
		}
	}
	hwm, err := g.mon.hwm()
	if err != nil {
		return fmt.Errorf("gateway peak RSS: %w", err)
	}
	// The kernel updates VmHWM from per-thread counters, so a sample can read a
	// little above it: the peak is the larger of the two.
	stats.PeakRSSMiB = max(mib(hwm), stats.SendPeakRSSMiB, stats.ReceivePeakRSSMiB)
	b.logf("gateway for %s: peak RSS %.1f MiB", t, stats.PeakRSSMiB)
	return g.stop()
}

// sendResult is the part of "lex send --json" lexbench reads.
type sendResult struct {
	ID             string `json:"id"`
	Transport      string `json:"transport"`
	CiphertextSize int64  `json:"ciphertext_size"`
}

// send times one "lex send" and reads the upload phase from the gateway's log.
func (b *bench) send(ctx context.Context, g *gateway, t, cfg string, run int, stats *gatewayStats) (string, error) {
	settle()
	g.mon.reset()
	cpu0, _ := g.mon.cpu()
	r, err := runTimed(ctx, "", b.lex, "--config", cfg, "--transport", t,
		"send", "--json", "--to", team, "--matter", matter, b.file)
	if err != nil {
		return "", err
	}
	var res sendResult
	json.Unmarshal([]byte(lastJSON(r.stdout)), &res)
	if _, err := sentID(r.stdout, t); err != nil {
		return "", err
	}
	b.gatewayPhase(g, rowSend(t), &stats.SendPeakRSSMiB, cpu0)
	b.record(rowSend(t), run, r.wall, r.cpu)
	span, n, err := g.contentSpan(res.ID, "PATCH")
	if err != nil {
		return "", err
	}
	b.record(rowUpload(t), run, span, 0)
	stats.UploadRequests = n
	stats.CiphertextBytes = res.CiphertextSize
	return res.ID, nil
}

// receive times one "lex receive" into a fresh directory, checks the file came back
// whole, reads the download phase from the gateway's log and removes the copy.
func (b *bench) receive(ctx context.Context, g *gateway, t, cfg, id string, run int, stats *gatewayStats) error {
	out := b.path("received", fmt.Sprintf("%s-%d", t, run))
	settle()
	settle()
	g.mon.reset()
	cpu0, _ := g.mon.cpu()
	r, err := runTimed(ctx, "", b.lex, "--config", cfg, "--transport", t, "receive", id, "-o", out)
	if err != nil {
		return err
	}
	b.gatewayPhase(g, rowReceive(t), &stats.ReceivePeakRSSMiB, cpu0)
	if err := checkSize(filepath.Join(out, filepath.Base(b.file)), b.opt.size); err != nil {
		return fmt.Errorf("lex receive: %w", err)
	}
	b.record(rowReceive(t), run, r.wall, r.cpu)
	span, _, err := g.contentSpan(id, "GET")
	if err != nil {
		return err
	}
	b.record(rowDownload(t), run, span, 0)
	return os.RemoveAll(out)
}

// gatewayPhase records the gateway's CPU time since cpu0 against row and raises
// *peak to the phase's sampled RSS peak.
func (b *bench) gatewayPhase(g *gateway, row string, peak *float64, cpu0 time.Duration) {
	*peak = max(*peak, mib(g.mon.phasePeak()))
	if cpu, err := g.mon.cpu(); err == nil {
		r := b.rep.row(row)
		r.gwcpus = append(r.gwcpus, cpu-cpu0)
	}
}

// clientConfig writes the lex config of one user for gateway g and returns its path.
// Each user has one home (identity, cache) and a config per gateway.
func (b *bench) clientConfig(g *gateway, user, t, pki, svid string) (string, error) {
	home, err := mkdir(b.path("clients", user))
	if err != nil {
		return "", err
	}
	cfg := benchkit.ClientConfig(g.addr, pki, svid, g.logKey)
	path := filepath.Join(home, "config-"+t+".yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// lastJSON returns the last top-level JSON object in s.
func lastJSON(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n{"); i >= 0 {
		return s[i+1:]
	}
	return s
}
