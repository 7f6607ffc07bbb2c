package siem_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/internal/rsyslogtest"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/siem"
	"github.com/lexgate/lexgate/policies"
)

// BenchmarkDecisionLatency: the latency of policy decisions (p50, p99)
// with the decision log forwarded to a local syslog-over-TLS receiver, and
// without: the forwarder reads the file on its own and must not add to it.
func BenchmarkDecisionLatency(b *testing.B) {
	b.Run("forwarding=off", func(b *testing.B) { benchDecisions(b, false) })
	b.Run("forwarding=on", func(b *testing.B) { benchDecisions(b, true) })
}

func benchDecisions(b *testing.B, forward bool) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := b.TempDir()
	path := filepath.Join(dir, "decisions.log")
	eng, err := policy.New(context.Background(), policy.Config{FS: policies.FS, Logger: quiet, DecisionLog: path})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	if forward {
		cert, key := rsyslogtest.TLSFiles(b, dir)
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			b.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() { // a receiver that reads and discards, as fast as it can
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func(c net.Conn) { io.Copy(io.Discard, c); c.Close() }(c)
			}
		}()
		f, err := siem.New(siem.Config{Syslog: siem.SyslogConfig{Addr: ln.Addr().String(), CAFile: cert},
			Cursor: filepath.Join(dir, "siem.cursor")}, siem.Deps{DecisionLog: path, Log: quiet})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { f.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
	}
	in := policy.Input{Version: 1, Action: "send", Time: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC),
		Source:       policy.Party{ID: "spiffe://harbor-law.example/paralegal/alice"},
		Destinations: []policy.Party{{ID: "spiffe://manila-lpo.example/site/review-team"}},
		Bundle: &policy.Bundle{Matter: "HL-2026-0042", Labels: []string{}, Size: 1 << 20, FileCount: 3,
			ManifestHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		if i%4 == 3 {
			in.Bundle.Labels = []string{"health"} // a refusal: waits for its line to be written
		} else {
			in.Bundle.Labels = []string{}
		}
		start := time.Now()
		if _, err := eng.Decide(context.Background(), in); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
