package identity

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Config says where the gateway's identity comes from. Exactly one source
// is used: PEM files (SVIDCert and SVIDKey) or the SPIFFE Workload API
// (WorkloadAPI, or the SPIFFE_ENDPOINT_SOCKET environment variable when
// neither is set).
type Config struct {
	// SVIDCert is the PEM file holding the gateway's X.509-SVID chain, leaf
	// first. Requires SVIDKey and Bundles.
	SVIDCert string `yaml:"svid_cert"`
	// SVIDKey is the PEM file holding the SVID's private key (PKCS #8).
	SVIDKey string `yaml:"svid_key"`
	// Bundles maps a trust domain name (one per organisation, e.g.
	// "manila-lpo.example") to the PEM file of its X.509 bundle. With the
	// file source it lists every trust domain the gateway accepts, its own
	// included. With the Workload API it adds to, and for the listed trust
	// domains replaces, the bundles the Workload API delivers.
	Bundles map[string]string `yaml:"bundles"`
	// WorkloadAPI is the Workload API address, e.g.
	// unix:///run/spire/agent.sock. If it and SVIDCert are empty, the
	// SPIFFE_ENDPOINT_SOCKET environment variable is used.
	WorkloadAPI string `yaml:"workload_api"`
	// SPIFFEID picks, among the SVIDs the Workload API offers, the one with
	// this ID (the first if empty, as the specification says). Set it when
	// the agent's registration entries give this workload several.
	SPIFFEID string `yaml:"spiffe_id"`
	// Revoked lists SPIFFE IDs refused at the TLS handshake (the admin deny
	// list), whatever their certificates say.
	Revoked []string `yaml:"revoked"`
	// Federation lists partner trust domains whose bundles are fetched from
	// their SPIFFE bundle endpoints and refreshed (see [Federation]).
	Federation []Federation `yaml:"federation"`
	// WatchInterval is how often [Source.Watch] looks for renewed SVID and
	// bundle files (DefaultWatchInterval if zero, never if negative; SIGHUP
	// reloads them too). The Workload API streams its updates instead.
	WatchInterval time.Duration `yaml:"watch_interval"`
	// Logger receives refused handshakes and Workload API trouble; nil
	// means slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// sourceKind is where a Config says the identity comes from.
type sourceKind int

const (
	fromFiles sourceKind = iota + 1
	fromWorkloadAPI
)

// checked is a validated Config.
type checked struct {
	kind    sourceKind
	addr    string                          // Workload API address
	pick    spiffeid.ID                     // Config.SPIFFEID, zero if unset
	bundles map[spiffeid.TrustDomain]string // trust domain -> PEM file
	revoked map[spiffeid.ID]struct{}
	log     *slog.Logger
	watch   time.Duration
	fed     []*federated
}

// check validates c, naming the field at fault, and returns it parsed.
func (c Config) check() (*checked, error) {
	out := &checked{log: c.Logger, bundles: map[spiffeid.TrustDomain]string{}, revoked: map[spiffeid.ID]struct{}{}}
	if out.log == nil {
		out.log = slog.Default()
	}
	out.watch = c.WatchInterval
	if out.watch == 0 {
		out.watch = DefaultWatchInterval
	}
	kind, addr, err := c.source()
	if err != nil {
		return nil, err
	}
	out.kind, out.addr = kind, addr
	if c.SPIFFEID != "" {
		if kind != fromWorkloadAPI {
			return nil, errors.New("identity: spiffe_id picks an SVID of the workload API; the files hold one")
		}
		id, err := spiffeid.FromString(c.SPIFFEID)
		if err != nil {
			return nil, fmt.Errorf("identity: spiffe_id %q: %w", c.SPIFFEID, err)
		}
		out.pick = id
	}
	for _, name := range slices.Sorted(maps.Keys(c.Bundles)) {
		td, err := spiffeid.TrustDomainFromString(name)
		if err != nil {
			return nil, fmt.Errorf("identity: bundles: %q is not a trust domain name: %w", name, err)
		}
		if c.Bundles[name] == "" {
			return nil, fmt.Errorf("identity: bundles: no file given for trust domain %s", td)
		}
		out.bundles[td] = c.Bundles[name]
	}
	if out.fed, err = checkFederation(c.Federation, out.bundles); err != nil {
		return nil, err
	}
	if kind == fromFiles && len(out.bundles) == 0 {
		return nil, errors.New("identity: bundles: at least one trust domain bundle is required with svid_cert")
	}
	for i, s := range c.Revoked {
		id, err := spiffeid.FromString(s)
		if err != nil {
			return nil, fmt.Errorf("identity: revoked[%d]: %q is not a SPIFFE ID: %w", i, s, err)
		}
		out.revoked[id] = struct{}{}
	}
	return out, nil
}

// source picks the identity source and, for the Workload API, its address.
func (c Config) source() (sourceKind, string, error) {
	switch {
	case c.SVIDCert != "" || c.SVIDKey != "":
		if c.SVIDCert == "" || c.SVIDKey == "" {
			return 0, "", errors.New("identity: svid_cert and svid_key must be set together")
		}
		if c.WorkloadAPI != "" {
			return 0, "", errors.New("identity: set either svid_cert/svid_key (files) or workload_api, not both")
		}
		return fromFiles, "", nil
	case c.WorkloadAPI != "":
		if err := checkWorkloadAddr(c.WorkloadAPI); err != nil {
			return 0, "", fmt.Errorf("identity: workload_api: %w", err)
		}
		return fromWorkloadAPI, c.WorkloadAPI, nil
	}
	addr := os.Getenv(SocketEnv)
	if addr == "" {
		return 0, "", fmt.Errorf("identity: no identity configured: set svid_cert and svid_key, or workload_api, or the %s environment variable", SocketEnv)
	}
	if err := checkWorkloadAddr(addr); err != nil {
		return 0, "", fmt.Errorf("identity: %s: %w", SocketEnv, err)
	}
	return fromWorkloadAPI, addr, nil
}
