package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"go.yaml.in/yaml/v3"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/yamlcheck"
)

// Config is the lex configuration file, YAML. Relative paths are resolved against
// the file's directory; unknown keys are an error.
//
//	gateway: 127.0.0.1:8443                         # host:port, QUIC (UDP) and TCP; several
//	                                                # replicas: "gw1:8443,gw2:8443", tried in order
//	gateway_id: spiffe://harbor-law.example/gateway # the gateway's SPIFFE ID
//	svid_cert: alice.crt                            # this user's X.509-SVID chain (PEM)
//	svid_key: alice.key
//	# or, instead of svid_cert and svid_key, the SPIFFE Workload API (a SPIRE
//	# agent), which rotates the SVID while lex runs:
//	# workload_api: unix:///run/spire/agent.sock
//	# spiffe_id: spiffe://harbor-law.example/legacy/dms # which SVID, if it offers several
//	bundles:                                        # trust domain → CA bundle (PEM)
//	  harbor-law.example: harbor-law.example/bundle.pem
//	identity: identity.age                          # default <config dir>/identity.age
//	cache_dir: /var/cache/lex                       # default os.UserCacheDir()/lex
//	log_key: harbor-law.example/lexgate-audit+1a2b3c4d+AbC… # the gateway's audit log key ("lexgate log-key")
type Config struct {
	Gateway   string `yaml:"gateway"`
	GatewayID string `yaml:"gateway_id"`
	SVIDCert  string `yaml:"svid_cert"`
	SVIDKey   string `yaml:"svid_key"`
	// WorkloadAPI is the SPIFFE Workload API address (unix:///path): the SVID
	// and the bundles of its trust domain (and federated ones) come from it,
	// instead of svid_cert and svid_key. Bundles listed in bundles take
	// precedence.
	WorkloadAPI string `yaml:"workload_api"`
	// SPIFFEID picks the SVID with this ID when the Workload API offers
	// several; the first otherwise.
	SPIFFEID string            `yaml:"spiffe_id"`
	Bundles  map[string]string `yaml:"bundles"`
	Identity string            `yaml:"identity"`
	CacheDir string            `yaml:"cache_dir"`
	// LogKey pins the gateway's audit log public key (a note verifier key).
	LogKey string `yaml:"log_key"`
	// Login is single sign-on for people (lex login): without svid_cert and
	// workload_api, lex uses the certificate lex login stored.
	Login *LoginConfig `yaml:"login"`

	// Path is the file the configuration was read from.
	Path string `yaml:"-"`
}

// DefaultConfigPath is where lex looks for its configuration without --config:
// $LEX_CONFIG, else lex/config.yaml in os.UserConfigDir ($XDG_CONFIG_HOME on Linux).
func DefaultConfigPath() (string, error) {
	if p := os.Getenv("LEX_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration directory (%w): use --config or $LEX_CONFIG", err)
	}
	return filepath.Join(dir, "lex", "config.yaml"), nil
}

// LoadConfig reads the configuration file at path and fills in defaults. A missing
// file is an error that wraps [os.ErrNotExist]; unknown keys are an error.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config %s does not exist: write one (see \"lex help config\") or pass --config: %w", path, os.ErrNotExist)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parseConfig(data, path)
	if err != nil {
		return nil, err
	}
	if err := c.checkKeyFiles(); err != nil {
		return nil, err
	}
	return c, nil
}

// checkKeyFiles refuses a config whose SVID key or age identity others on this
// machine can read: either lets them act as this user, or read what was sent
// to them. A file that does not exist yet is fine (lex keygen writes it 0600).
func (c *Config) checkKeyFiles() error {
	var errs []error
	for _, f := range []struct{ what, path string }{{"svid_key", c.SVIDKey}, {"identity", c.Identity}} {
		if err := certs.CheckPrivateKeyFile(f.what, f.path); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config %s: %w", c.Path, errors.Join(errs...))
	}
	return nil
}

// parseConfig decodes data strictly and resolves its paths against path's directory.
func parseConfig(data []byte, path string) (*Config, error) {
	c := &Config{}
	if err := yamlcheck.Check(path, data, c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err != io.EOF {
		return nil, fmt.Errorf("config %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if dec.Decode(new(yaml.Node)) != io.EOF {
		return nil, fmt.Errorf("config %s: more than one YAML document (a config is one; the rest would be ignored)", path)
	}
	c.Path = path
	if err := c.resolve(); err != nil {
		return nil, err
	}
	return c, nil
}

// defaultConfig is the configuration used by commands that can run without a file
// (keygen): only the identity path, next to where the file would be.
func defaultConfig(path string) (*Config, error) {
	c := &Config{Path: path}
	return c, c.resolve()
}

func (c *Config) resolve() error {
	dir := filepath.Dir(c.Path)
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.SVIDCert, c.SVIDKey = abs(c.SVIDCert), abs(c.SVIDKey)
	for td, p := range c.Bundles {
		c.Bundles[td] = abs(p)
	}
	if c.Login != nil {
		c.Login.CARoot = abs(c.Login.CARoot)
		if c.Login.Dir == "" {
			c.Login.Dir = "login"
		}
		c.Login.Dir = abs(c.Login.Dir)
	}
	if c.Identity == "" {
		c.Identity = "identity.age"
	}
	c.Identity = abs(c.Identity)
	if c.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("config %s: no cache_dir and no user cache directory (%v)", c.Path, err)
		}
		c.CacheDir = filepath.Join(base, "lex")
	}
	c.CacheDir = abs(c.CacheDir)
	return nil
}

// checkNetwork reports the settings a command that talks to the gateway needs but
// the file lacks or gets wrong.
func (c *Config) checkNetwork() error {
	var missing []string
	fields := []struct{ key, val string }{{"gateway", c.Gateway}, {"gateway_id", c.GatewayID}}
	if c.WorkloadAPI == "" && !c.Login.enabled() {
		fields = append(fields, struct{ key, val string }{"svid_cert", c.SVIDCert}, struct{ key, val string }{"svid_key", c.SVIDKey})
	} else if c.Login.enabled() && (c.SVIDCert != "" || c.WorkloadAPI != "") {
		return fmt.Errorf("config %s: a login section replaces svid_cert, svid_key and workload_api: set one of them", c.Path)
	} else if c.SVIDCert != "" || c.SVIDKey != "" {
		return fmt.Errorf("config %s: set either svid_cert and svid_key, or workload_api, not both", c.Path)
	}
	for _, f := range fields {
		if f.val == "" {
			missing = append(missing, f.key)
		}
	}
	if c.WorkloadAPI == "" && len(c.Bundles) == 0 {
		missing = append(missing, "bundles")
	}
	if len(missing) > 0 {
		return fmt.Errorf("config %s: missing %s", c.Path, strings.Join(missing, ", "))
	}
	for _, a := range c.gateways() {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("config %s: gateway %q: want host:port, or several separated by commas (%v)", c.Path, c.Gateway, err)
		}
	}
	if _, err := spiffeid.FromString(c.GatewayID); err != nil {
		return fmt.Errorf("config %s: gateway_id %q: %v", c.Path, c.GatewayID, err)
	}
	if c.WorkloadAPI != "" {
		if err := workloadapi.ValidateAddress(c.WorkloadAPI); err != nil {
			return fmt.Errorf("config %s: workload_api %q: want unix:///path/to/agent.sock (%v)", c.Path, c.WorkloadAPI, err)
		}
	}
	if c.SPIFFEID != "" {
		if _, err := spiffeid.FromString(c.SPIFFEID); err != nil {
			return fmt.Errorf("config %s: spiffe_id %q: %v", c.Path, c.SPIFFEID, err)
		}
	}
	return nil
}

// gatewayID returns the parsed gateway_id; checkNetwork has validated it.
func (c *Config) gatewayID() spiffeid.ID {
	id, _ := spiffeid.FromString(c.GatewayID)
	return id
}

// loadSVID reads this user's X.509-SVID.
func (c *Config) loadSVID() (*x509svid.SVID, error) {
	svid, err := certs.LoadSVID(c.SVIDCert, c.SVIDKey)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", c.Path, err)
	}
	return svid, nil
}

// loadBundles reads the trust bundles, one per trust domain.
func (c *Config) loadBundles() (*x509bundle.Set, error) {
	set, err := certs.LoadBundles(c.Bundles)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", c.Path, err)
	}
	return set, nil
}

// gateways returns the gateway addresses of the config, in the order lex
// tries them: replicas of one gateway, any of which serves any request.
func (c *Config) gateways() []string {
	var out []string
	for _, a := range strings.Split(c.Gateway, ",") {
		out = append(out, strings.TrimSpace(a))
	}
	return out
}
