package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.yaml.in/yaml/v3"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/identity"
	"github.com/lexgate/lexgate/gateway/internal/heapfloor"
	"github.com/lexgate/lexgate/gateway/notify"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/risk"
	"github.com/lexgate/lexgate/gateway/sftpfront"
	"github.com/lexgate/lexgate/gateway/siem"
	"github.com/lexgate/lexgate/gateway/store"
	"github.com/lexgate/lexgate/gateway/transfer"
	"github.com/lexgate/lexgate/gateway/yamlcheck"
)

// Config is the gateway's whole configuration, as read from lexgate.yaml. Each part
// belongs to the package that uses it; unknown keys are errors. The zero value of
// every optional field is a working default.
type Config struct {
	// Listen is the address of the API, on TCP (HTTPS/2) and UDP (HTTP/3) at the
	// same port. Default 127.0.0.1:8443.
	Listen string `yaml:"listen"`
	// DisableQUIC turns the HTTP/3 listener off (TCP only).
	DisableQUIC bool `yaml:"disable_quic"`
	// Admin is the address of /healthz and /metrics, plain HTTP. Default
	// 127.0.0.1:9443. "off" disables it. A host that is not loopback is
	// refused unless AdminPublic is set.
	Admin string `yaml:"admin_listen"`
	// AdminPublic lets the plain-HTTP admin listener bind an address that is
	// not loopback (a metrics scraper on another host), logged at WARN on
	// every start: it carries no client authentication.
	AdminPublic bool `yaml:"admin_listen_public"`
	// AdminMTLS serves the admin listener over mutual TLS with the gateway's
	// SVID: callers present an SVID and the policy decides the "admin" action
	// for each request. Any address is then accepted.
	AdminMTLS bool `yaml:"admin_mtls"`
	// GatewayID is the SPIFFE ID this gateway serves as; it refuses to start
	// with an SVID that is not it (or one of GatewayIDs). Default: the path
	// /gateway in its SVID's trust domain, the ID lex expects by default.
	GatewayID string `yaml:"gateway_id"`
	// GatewayIDs lists further SPIFFE IDs the gateway may serve as (one per
	// replica, or during a rename).
	GatewayIDs []string `yaml:"gateway_ids"`
	// ShutdownGrace is how long uploads in flight may take to finish on SIGTERM
	// before their connections are cut (they resume later). Default 30s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// Log configures the operational log.
	Log LogConfig `yaml:"log"`
	// Limits on the API.
	Limits Limits `yaml:"limits"`

	Identity identity.Config `yaml:"identity"`
	Policy   policy.Config   `yaml:"policy"`
	Store    store.Config    `yaml:"store"`
	Transfer transfer.Config `yaml:"transfer"`
	// SFTP is the SSH/SFTP front for legacy systems, off unless sftp.listen is set.
	SFTP sftpfront.Config `yaml:"sftp"`
	// Audit configures the audit log; its dir defaults to <store.dir>/audit and
	// its signing key to <store.dir>/audit.key.
	Audit audit.Config `yaml:"audit"`
	// Risk tunes the per-identity statistical baselines behind input.risk
	// (issue 16); the zero value is a working default.
	Risk risk.Config `yaml:"risk"`
	// GC tunes Go's garbage collector for lexgate serve.
	GC GCConfig `yaml:"gc"`
	// Notify sends email and webhook notifications from the store's outbox.
	Notify notify.Config `yaml:"notify"`
	// SIEM forwards policy decisions as syslog over TLS; its cursor defaults
	// to <store.dir>/siem.cursor.
	SIEM siem.Config `yaml:"siem"`
}

// GCConfig tunes Go's garbage collector for the gateway process.
type GCConfig struct {
	// MinHeapMiB is the heap size, in MiB, under which no collection starts
	// (default 64; -1 leaves Go's pacing, GOGC, alone). A gateway whose live
	// heap is small (its policy set, its connections) otherwise collects
	// every few MB of allocation, and the decisions that run during a
	// collection take twice as long (policies/README.md, Speed). GOGC=off
	// in the environment turns the floor off too; GOMEMLIMIT still caps it.
	MinHeapMiB int `yaml:"min_heap_mib"`
}

// MinHeap is the heap floor in bytes, 0 when it is off.
func (c GCConfig) MinHeap() uint64 {
	if c.MinHeapMiB <= 0 {
		return 0
	}
	return uint64(c.MinHeapMiB) << 20
}

// LogConfig configures log/slog output on stderr.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // json (default) or text
}

// Limits bound what one connection can ask of the gateway.
type Limits struct {
	// MaxHeaderBytes bounds request headers (default 64 KiB).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// ReadHeaderTimeout bounds how long a client may take to send headers (default
	// 10s). It bounds the TLS handshake over TCP and, as the QUIC handshake idle
	// timeout, the QUIC handshake too: a stalled handshake is cut at this deadline.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle connections (default 2m).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxStreamsPerConn bounds concurrent requests on one connection (default 100).
	MaxStreamsPerConn int `yaml:"max_streams_per_conn"`
	// MaxPreAuthPerAddr bounds the connections from one IP address whose TLS
	// handshake is not finished (default 32), over TCP and over QUIC alike; more
	// are refused at their first packet.
	MaxPreAuthPerAddr int `yaml:"max_preauth_per_addr"`
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8443"
	}
	if c.Admin == "" {
		c.Admin = "127.0.0.1:9443"
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.Limits.MaxHeaderBytes == 0 {
		c.Limits.MaxHeaderBytes = 64 << 10
	}
	if c.Limits.ReadHeaderTimeout == 0 {
		c.Limits.ReadHeaderTimeout = 10 * time.Second
	}
	if c.Limits.IdleTimeout == 0 {
		c.Limits.IdleTimeout = 2 * time.Minute
	}
	if c.Limits.MaxStreamsPerConn == 0 {
		c.Limits.MaxStreamsPerConn = 100
	}
	if c.Limits.MaxPreAuthPerAddr == 0 {
		c.Limits.MaxPreAuthPerAddr = 32
	}
	if c.Store.Dir == "" {
		c.Store.Dir = "lexgate-data"
	}
	if c.GC.MinHeapMiB == 0 {
		c.GC.MinHeapMiB = heapfloor.Default >> 20
	}
	if c.Policy.DecisionLog == "" { // "off" turns it off
		c.Policy.DecisionLog = filepath.Join(c.Store.Dir, "decisions.log")
	}
	if c.Audit.Dir == "" {
		c.Audit.Dir = filepath.Join(c.Store.Dir, "audit")
	}
	if c.SIEM.Cursor == "" {
		c.SIEM.Cursor = filepath.Join(c.Store.Dir, "siem.cursor")
	}
}

// Validate reports every problem it finds in the config, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port: %w", c.Listen, err))
	}
	if err := c.checkAdmin(); err != nil {
		errs = append(errs, err)
	}
	for _, id := range c.ownIDs() {
		if _, err := spiffeid.FromString(id); err != nil {
			errs = append(errs, fmt.Errorf("gateway_id: %q is not a SPIFFE ID: %w", id, err))
		}
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, errors.New("shutdown_grace: must not be negative"))
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q, want json or text", c.Log.Format))
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q, want debug, info, warn or error", c.Log.Level))
	}
	if c.Limits.MaxHeaderBytes < 0 || c.Limits.MaxStreamsPerConn < 0 || c.Limits.IdleTimeout < 0 || c.Limits.ReadHeaderTimeout < 0 || c.Limits.MaxPreAuthPerAddr < 0 {
		errs = append(errs, errors.New("limits: values must not be negative"))
	}
	if c.GC.MinHeapMiB < -1 || c.GC.MinHeapMiB > 1<<20 {
		errs = append(errs, fmt.Errorf("gc.min_heap_mib: %d, want a size in MiB up to 1048576, or -1 for Go's own pacing", c.GC.MinHeapMiB))
	}
	if err := c.Transfer.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.SFTP.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Audit.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Notify.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.SIEM.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("gateway: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// LoadConfig reads a YAML config file. Unknown keys are errors, each with its
// line and the key it most likely misspells; relative paths in it are resolved
// against the file's directory.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("gateway: read config: %w", err)
	}
	if err := yamlcheck.Check(path, b, &c); err != nil {
		return c, fmt.Errorf("gateway: config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("gateway: config %s: %w", path, err)
	}
	if dec.Decode(new(yaml.Node)) != io.EOF {
		return c, fmt.Errorf("gateway: config %s: more than one YAML document (a config is one; the rest would be ignored)", path)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return c, fmt.Errorf("gateway: config %s: %w", path, err)
	}
	c.setDefaults()
	c.resolvePaths(dir)
	return c, c.Validate()
}

func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Identity.SVIDCert)
	abs(&c.Identity.SVIDKey)
	for td, p := range c.Identity.Bundles {
		abs(&p)
		c.Identity.Bundles[td] = p
	}
	for i := range c.Identity.Federation {
		abs(&c.Identity.Federation[i].BootstrapBundle)
	}
	abs(&c.Policy.Dir)
	if c.Policy.DecisionLog != "off" {
		abs(&c.Policy.DecisionLog)
	}
	abs(&c.Store.Dir)
	abs(&c.Store.SpoolDir)
	abs(&c.Store.S3.SecretKeyFile)
	abs(&c.SFTP.HostKey)
	abs(&c.Audit.Dir)
	abs(&c.Audit.KeyFile)
	c.resolveNotifyPaths(abs)
}
