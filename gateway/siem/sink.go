package siem

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"
)

// sink is one SIEM receiver. send delivers a batch in order or fails; a
// failed batch is sent again (to every sink) from the cursor.
type sink interface {
	send(ctx context.Context, rs []record) error
	close()
}

func loadTLS(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
	}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// syslogSink writes RFC 5425 frames on one TLS connection, dialled when
// needed.
type syslogSink struct {
	addr     string
	tls      *tls.Config
	facility int
	host     string
	conn     net.Conn
}

func (s *syslogSink) send(ctx context.Context, rs []record) error {
	if s.conn == nil {
		d := tls.Dialer{Config: s.tls, NetDialer: &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
		c, err := d.DialContext(ctx, "tcp", s.addr)
		if err != nil {
			return fmt.Errorf("siem: syslog: dial %s: %w", s.addr, err)
		}
		s.conn = c
	}
	var b bytes.Buffer
	for _, r := range rs {
		b.Write(frame(r.syslog(s.facility, s.host)))
	}
	s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := s.conn.Write(b.Bytes()); err != nil {
		s.close()
		return fmt.Errorf("siem: syslog: send: %w", err)
	}
	return nil
}

func (s *syslogSink) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// otlpSink posts OTLP/HTTP log export requests (protobuf).
type otlpSink struct {
	url     string
	headers map[string]string
	client  *http.Client
	res     *resource.Resource
}

func newOTLPSink(c OTLPConfig, host string) (*otlpSink, error) {
	tc, err := loadTLS(c.CAFile, c.CertFile, c.KeyFile, "")
	if err != nil {
		return nil, fmt.Errorf("siem: otlp: %w", err)
	}
	str := func(k, v string) *common.KeyValue {
		return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: v}}}
	}
	return &otlpSink{url: c.Endpoint, headers: c.Headers,
		client: &http.Client{Timeout: c.Timeout, Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}},
		res:    &resource.Resource{Attributes: []*common.KeyValue{str("service.name", "lexgate"), str("host.name", host)}}}, nil
}

// otlpSeverity maps a syslog severity to OpenTelemetry's.
func otlpSeverity(sev int) (logs.SeverityNumber, string) {
	switch sev {
	case sevWarning:
		return logs.SeverityNumber_SEVERITY_NUMBER_WARN, "WARN"
	case sevNotice:
		return logs.SeverityNumber_SEVERITY_NUMBER_INFO2, "NOTICE"
	}
	return logs.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
}

// logRecord is r as an OTLP log record: the body is the text, each mapped
// field an attribute "lexgate.FIELD", and event.name "lexgate.decision" or
// "lexgate.audit".
func (r record) logRecord(observed time.Time) *logs.LogRecord {
	num, text := otlpSeverity(r.sev)
	lr := &logs.LogRecord{TimeUnixNano: uint64(r.time.UnixNano()), ObservedTimeUnixNano: uint64(observed.UnixNano()),
		SeverityNumber: num, SeverityText: text, EventName: "lexgate." + r.msgid,
		Body: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: r.text}}}
	for _, p := range r.params {
		if p[1] != "" {
			lr.Attributes = append(lr.Attributes, &common.KeyValue{Key: "lexgate." + p[0],
				Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: p[1]}}})
		}
	}
	return lr
}

func (s *otlpSink) send(ctx context.Context, rs []record) error {
	now := time.Now()
	scope := &logs.ScopeLogs{Scope: &common.InstrumentationScope{Name: "github.com/lexgate/lexgate/gateway/siem"}}
	for _, r := range rs {
		scope.LogRecords = append(scope.LogRecords, r.logRecord(now))
	}
	body, err := proto.Marshal(&collogs.ExportLogsServiceRequest{ResourceLogs: []*logs.ResourceLogs{{Resource: s.res, ScopeLogs: []*logs.ScopeLogs{scope}}}})
	if err != nil {
		return fmt.Errorf("siem: otlp: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("siem: otlp: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("siem: otlp: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("siem: otlp: %s answered %s: %s", s.url, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (s *otlpSink) close() { s.client.CloseIdleConnections() }
