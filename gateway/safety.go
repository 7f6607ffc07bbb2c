package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/identity"
	"github.com/lexgate/lexgate/gateway/policy"
)

// checkAdmin refuses an admin address that is not host:port, or whose host is
// not loopback when the listener is plain HTTP (no admin_mtls) and
// admin_listen_public is not set: /metrics and /healthz without client
// authentication stay on the host unless the operator says otherwise.
func (c *Config) checkAdmin() error {
	if c.Admin == "off" {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Admin)
	if err != nil {
		return fmt.Errorf("admin_listen: %q is not host:port or off: %w", c.Admin, err)
	}
	if c.AdminPublic || c.AdminMTLS || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("admin_listen: %q is not a loopback address, and the admin listener is plain HTTP without authentication: use 127.0.0.1 or [::1], set admin_mtls: true to serve it over mutual TLS to administrators only, or admin_listen_public: true to serve it there as it is", c.Admin)
}

// isLoopback reports whether host is a loopback IP address or "localhost". An
// empty host (":9443") means every interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ownIDs is every SPIFFE ID the config names for the gateway itself.
func (c *Config) ownIDs() []string {
	ids := slices.Clone(c.GatewayIDs)
	if c.GatewayID != "" {
		ids = append(ids, c.GatewayID)
	}
	return ids
}

// checkOwnID refuses an SVID that is not the gateway's: a workload's or a
// person's certificate put in the gateway's place would let the gateway seal
// SFTP uploads and answer lex as someone else. With no gateway_id configured,
// the gateway must be /gateway in its own trust domain.
func (c *Config) checkOwnID(got spiffeid.ID) error {
	want := c.ownIDs()
	if len(want) == 0 {
		want = []string{"spiffe://" + got.TrustDomain().Name() + "/gateway"}
	}
	if slices.Contains(want, got.String()) {
		return nil
	}
	key := "gateway_id"
	if len(c.ownIDs()) == 0 {
		key = "gateway_id (default)"
	}
	return fmt.Errorf("its SVID is %s, not the gateway's own ID (%s: %v): give it the gateway's SVID, or set gateway_id to the ID it should serve as", got, key, want)
}

// checkKeyFiles refuses private key files that group or others may read: the
// SVID key, the audit signing key, the SFTP host key and the custodial
// identities sealed beside it. Files that do not exist yet are made 0600 by
// whoever creates them.
func (c *Config) checkKeyFiles() error {
	hostKey := c.SFTP.HostKey
	if hostKey == "" {
		hostKey = defaultHostKey(c.Store.Dir)
	}
	files := []struct{ what, path string }{
		{"identity.svid_key", c.Identity.SVIDKey},
		{"audit.key_file", c.Audit.KeyFileOrDefault()},
		{"sftp.host_key", hostKey},
		{"the QUIC stateless reset key", filepath.Join(c.Store.Dir, statelessResetKeyFile)},
		{"store.s3.secret_key_file", c.Store.S3.SecretKeyFile},
	}
	custody, _ := filepath.Glob(filepath.Join(filepath.Dir(hostKey), "sftp_custody", "*.sealed"))
	for _, p := range custody {
		files = append(files, struct{ what, path string }{"custodial identity", p})
	}
	var errs []error
	for _, f := range files {
		if err := certs.CheckPrivateKeyFile(f.what, f.path); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("gateway: refusing to start: %w", errors.Join(errs...))
	}
	return nil
}

// defaultHostKey is the SFTP host key file when sftp.host_key is not set.
func defaultHostKey(storeDir string) string {
	return filepath.Join(storeDir, "sftp_host_ed25519_key")
}

// adminHost is the host part of an admin address Validate accepted.
func adminHost(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return host
}

// adminMTLS serves the admin listener's handler h over mutual TLS: the caller
// presents an X.509-SVID the gateway's bundles verify, and the policy decides
// the "admin" action for it on every request (only data.admins may, in the
// default policies). It is what lets admin_listen leave loopback safely.
func (g *Gateway) adminMTLS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := identity.PeerID(r.TLS)
		if err != nil {
			http.Error(w, "a verified SPIFFE client certificate is required", http.StatusUnauthorized)
			return
		}
		d, err := g.policy.Decide(r.Context(), policy.Input{Action: "admin", Time: time.Now().UTC(), Source: policy.Party{ID: caller.String()}})
		if err != nil || !d.Allow {
			g.log.Warn("admin request refused", "caller", caller.String(), "path", r.URL.Path, "decision_id", d.ID, "err", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(api.Error{Code: api.CodeDenied, Message: "refused by policy: the admin listener is for administrators", DecisionID: d.ID, Reasons: apiReasons(d.Reasons)})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// apiReasons converts policy reasons to their wire form.
func apiReasons(rs []policy.Reason) []api.Reason {
	out := make([]api.Reason, 0, len(rs))
	for _, r := range rs {
		out = append(out, api.Reason{Code: r.Code, Message: r.Message})
	}
	return out
}
