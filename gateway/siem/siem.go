// Package siem forwards lexgate's policy decisions and audit log entries
// to a security team's SIEM as RFC 5424 syslog messages over TLS (RFC 5425)
// and/or as OpenTelemetry log records (OTLP/HTTP).
//
// The forwarder reads the decision log the policy engine writes
// (policy.Config.DecisionLog, rotated as PATH.1, PATH.2, … then PATH) and
// the audit log up to its latest checkpoint, and remembers how far it got
// in a cursor file (the file's inode and the offset after the last line
// sent; the next audit entry's index). It never stands in a decision's way:
// decisions are written to the file whatever the SIEM does, and the
// forwarder catches up from the cursor after an outage or a restart,
// sending every line once, in order. A line in flight on a TCP connection
// that breaks may be lost by the network (RFC 5425 has no acknowledgement);
// a forwarder that stops cleanly or is restarted sends nothing twice and
// skips nothing.
//
// The field mapping is in docs/notifications.md.
package siem

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Config is the `siem:` section of lexgate.yaml. The zero value forwards
// nothing.
type Config struct {
	// Syslog is the RFC 5425 (syslog over TLS) receiver; empty addr: off.
	Syslog SyslogConfig `yaml:"syslog"`
	// OTLP is an OpenTelemetry logs receiver (OTLP/HTTP, protobuf); empty
	// endpoint: off. Both may be on: each batch goes to both.
	OTLP OTLPConfig `yaml:"otlp"`
	// Cursor is the file that records how far forwarding got; default
	// <store.dir>/siem.cursor.
	Cursor string `yaml:"cursor"`
	// PollInterval is how often the forwarder looks for new decisions when
	// it has caught up (default 200ms).
	PollInterval time.Duration `yaml:"poll_interval"`
}

// SyslogConfig is one syslog-over-TLS receiver.
type SyslogConfig struct {
	// Addr is the receiver's host:port (6514 is the registered port).
	Addr string `yaml:"addr"`
	// CAFile verifies the receiver's certificate; empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name checked in the receiver's certificate;
	// default the host of Addr.
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile are a client certificate, for receivers that
	// authenticate their senders (optional).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Hostname is the HOSTNAME field; default the machine's host name.
	Hostname string `yaml:"hostname"`
	// Facility is the syslog facility (default 13, log audit).
	Facility int `yaml:"facility"`
}

// OTLPConfig is an OTLP/HTTP logs endpoint, such as an OpenTelemetry
// Collector's.
type OTLPConfig struct {
	// Endpoint is the full https:// URL, such as
	// https://collector.example:4318/v1/logs.
	Endpoint string `yaml:"endpoint"`
	// CAFile verifies the endpoint's certificate; empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are an optional client certificate.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Headers are sent with every request (an API key, a tenant).
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one export (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// Enabled reports whether anything is forwarded.
func (c Config) Enabled() bool { return c.Syslog.Addr != "" || c.OTLP.Endpoint != "" }

// Validate reports every problem in c, each naming its key under siem.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if c.Syslog.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Syslog.Addr); err != nil {
			errs = append(errs, fmt.Errorf("siem.syslog.addr: %q is not host:port: %w", c.Syslog.Addr, err))
		}
	}
	if c.OTLP.Endpoint != "" {
		if u, err := url.Parse(c.OTLP.Endpoint); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("siem.otlp.endpoint: %q is not an https:// URL", c.OTLP.Endpoint))
		}
		if (c.OTLP.CertFile == "") != (c.OTLP.KeyFile == "") {
			errs = append(errs, errors.New("siem.otlp: set both cert_file and key_file, or neither"))
		}
	}
	if (c.Syslog.CertFile == "") != (c.Syslog.KeyFile == "") {
		errs = append(errs, errors.New("siem.syslog: set both cert_file and key_file, or neither"))
	}
	if c.Syslog.Facility < 0 || c.Syslog.Facility > 23 {
		errs = append(errs, fmt.Errorf("siem.syslog.facility: %d, want 0 to 23", c.Syslog.Facility))
	}
	if c.PollInterval < 0 {
		errs = append(errs, errors.New("siem.poll_interval: must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.PollInterval == 0 {
		c.PollInterval = 200 * time.Millisecond
	}
	if c.Syslog.Facility == 0 {
		c.Syslog.Facility = 13
	}
	if c.OTLP.Timeout == 0 {
		c.OTLP.Timeout = 10 * time.Second
	}
	return c
}
