package sftpfront

import (
	"errors"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lexgate/lexgate/gateway/transfer"
)

// frontMetrics are the front's Prometheus metrics, on the registry in
// Deps.Metrics (the gateway's own, served on the admin listener's /metrics).
type frontMetrics struct {
	sessions   prometheus.Gauge
	logins     prometheus.Counter
	bytesIn    prometheus.Counter
	bytesOut   prometheus.Counter
	refusals   *prometheus.CounterVec
	duplicates prometheus.Counter
	resumed    prometheus.Counter
}

func newFrontMetrics(reg prometheus.Registerer) (*frontMetrics, error) {
	m := &frontMetrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lexgate_sftp_sessions", Help: "SFTP sessions open now."}),
		logins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lexgate_sftp_logins_total", Help: "SSH connections that authenticated and were allowed to log in."}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lexgate_sftp_bytes_in_total", Help: "File bytes uploaded over SFTP (plaintext, before the gateway encrypts them)."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lexgate_sftp_bytes_out_total", Help: "File bytes downloaded over SFTP (ciphertext, or plaintext from a custodial inbox)."}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lexgate_sftp_refusals_total", Help: "SFTP refusals by reason code (the front's sftp.* codes and the policy's reason codes)."},
			[]string{"code"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lexgate_sftp_duplicate_uploads_total", Help: "Identical re-uploads recognised within sftp.upload_window and not delivered again."}),
		resumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lexgate_sftp_resumed_uploads_total", Help: "Interrupted uploads resumed (reput) within sftp.upload_window."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sessions, m.logins, m.bytesIn, m.bytesOut, m.refusals, m.duplicates, m.resumed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// refused counts one refusal with code.
func (m *frontMetrics) refused(code string) { m.refusals.WithLabelValues(code).Inc() }

// refusedErr counts a core error that is a policy refusal, once per reason
// code; other errors are not refusals.
func (m *frontMetrics) refusedErr(err error) {
	var de *transfer.DeniedError
	if !errors.As(err, &de) {
		return
	}
	if len(de.Decision.Reasons) == 0 {
		m.refused("policy.denied")
	}
	for _, r := range de.Decision.Reasons {
		m.refused(r.Code)
	}
}

// countingReaderAt counts the bytes read from a download; Close closes the
// reader below (pkg/sftp closes what Fileread returned).
type countingReaderAt struct {
	r io.ReaderAt
	c prometheus.Counter
}

func (c countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.c.Add(float64(n))
	return n, err
}

func (c countingReaderAt) Close() error {
	if cl, ok := c.r.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}
