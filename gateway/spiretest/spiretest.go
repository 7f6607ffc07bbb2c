// Package spiretest runs a real SPIRE deployment for tests: spire-server and
// spire-agent v1.13.3 (pinned in the nested module cmd/internal/tools/spire,
// built from the Go module proxy and kept in a cache directory), on loopback,
// in a temporary directory, with the sqlite3 datastore, the memory key
// manager, a join token and the unix workload attestor. Registration entries
// select the test process's user, so every identity registered is offered to
// the test process; each component picks its own by SPIFFE ID (the gateway's
// and lex's spiffe_id setting).
//
//	srv := spiretest.StartServer(t, "harbor-law.example", spiretest.Options{SVIDTTL: 20 * time.Second})
//	agent := srv.StartAgent(t, spiffeid.RequireFromString("spiffe://harbor-law.example/gateway"))
//	// agent.Addr() is the Workload API address: unix:///...
//
// [Binaries] builds the programs when they are missing (a cold build takes
// several minutes; "make spire" does it ahead of the tests). Its tests run,
// never skip, wherever the Go module proxy is reachable.
package spiretest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// Version is the SPIRE release the tests run.
const Version = "v1.13.3"

// startTimeout bounds each wait for a SPIRE process to come up; generous, so
// that only a broken deployment, not a loaded machine, reaches it.
const startTimeout = 3 * time.Minute

// Options configure a SPIRE server.
type Options struct {
	// SVIDTTL is the default X.509-SVID lifetime (default 1h).
	SVIDTTL time.Duration
	// CATTL is the lifetime of the server's CA (default 24h). SPIRE prepares
	// the next CA at half of it and activates it at five sixths.
	CATTL time.Duration
	// BundleEndpoint serves the trust bundle on 127.0.0.1 for federation
	// (the https_spiffe profile), at BundlePort (a free port if 0).
	BundleEndpoint bool
	BundlePort     int
	// Federation lists trust domains to federate with through their bundle
	// endpoints.
	Federation []Peer
}

// Peer is another trust domain's SPIFFE bundle endpoint.
type Peer struct {
	TrustDomain string
	URL         string // https://127.0.0.1:port
	EndpointID  string // the endpoint server's SPIFFE ID (https_spiffe)
}

// Server is a running spire-server.
type Server struct {
	TD         spiffeid.TrustDomain
	Dir        string
	Port       int // the server API (agents)
	BundlePort int // the bundle endpoint, 0 without
	sock       string
	bin        string
	agentBin   string
}

// ServerID is the SPIFFE ID of a SPIRE server of td, which serves its bundle
// endpoint.
func ServerID(td spiffeid.TrustDomain) spiffeid.ID {
	return spiffeid.RequireFromPath(td, "/spire/server")
}

// FreePort returns a TCP port free on 127.0.0.1 a moment ago (for a bundle
// endpoint whose address another server's config must name first).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// shortDir makes a temporary directory with a short path (unix socket paths
// are limited to about 100 bytes) removed at the end of the test.
func shortDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// StartServer starts a spire-server for trust domain td and stops it at the
// end of the test.
func StartServer(t testing.TB, td string, o Options) *Server {
	t.Helper()
	bins := Binaries(t)
	s := &Server{TD: spiffeid.RequireTrustDomainFromString(td), Dir: shortDir(t, "spire-srv"), bin: bins.Server, agentBin: bins.Agent}
	s.sock = filepath.Join(s.Dir, "api.sock")
	s.Port = FreePort(t)
	if o.SVIDTTL == 0 {
		o.SVIDTTL = time.Hour
	}
	if o.CATTL == 0 {
		o.CATTL = 24 * time.Hour
	}
	var fed strings.Builder
	if o.BundleEndpoint || len(o.Federation) > 0 {
		fed.WriteString("  federation {\n")
		if o.BundleEndpoint {
			s.BundlePort = o.BundlePort
			if s.BundlePort == 0 {
				s.BundlePort = FreePort(t)
			}
			fmt.Fprintf(&fed, "    bundle_endpoint {\n      address = \"127.0.0.1\"\n      port = %d\n      refresh_hint = \"5s\"\n    }\n", s.BundlePort)
		}
		for _, p := range o.Federation {
			fmt.Fprintf(&fed, "    federates_with %q {\n      bundle_endpoint_url = %q\n      bundle_endpoint_profile \"https_spiffe\" {\n        endpoint_spiffe_id = %q\n      }\n    }\n", p.TrustDomain, p.URL, p.EndpointID)
		}
		fed.WriteString("  }\n")
	}
	conf := fmt.Sprintf(`server {
  bind_address = "127.0.0.1"
  bind_port = "%d"
  socket_path = %q
  trust_domain = %q
  data_dir = %q
  log_level = "INFO"
  ca_ttl = "%s"
  default_x509_svid_ttl = "%s"
%s}

plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = %q
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
}
`, s.Port, s.sock, td, filepath.Join(s.Dir, "data"), o.CATTL, o.SVIDTTL, fed.String(), filepath.Join(s.Dir, "data", "datastore.sqlite3"))
	path := filepath.Join(s.Dir, "server.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	Run(t, "spire-server "+td, filepath.Join(s.Dir, "server.log"), nil, s.bin, "run", "-config", path)
	waitFor(t, "spire-server "+td+" to answer", func() error {
		_, err := s.Run(t, "healthcheck")
		return err
	})
	return s
}

// Run runs a spire-server subcommand against s and returns its output.
func (s *Server) Run(t testing.TB, args ...string) (string, error) {
	t.Helper()
	n := 1 // "healthcheck"; "entry create" and the like take the flag after two words
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		n = 2
	}
	full := append(append(append([]string{}, args[:n]...), "-socketPath", s.sock), args[n:]...)
	cmd := exec.Command(s.bin, full...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("spire-server %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// MustRun is Run failing the test on error.
func (s *Server) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.Run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BundlePEM is the server's current X.509 trust bundle, PEM.
func (s *Server) BundlePEM(t testing.TB) []byte {
	t.Helper()
	return []byte(s.MustRun(t, "bundle", "show", "-format", "pem"))
}

// WriteBundle writes the current trust bundle to path.
func (s *Server) WriteBundle(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, s.BundlePEM(t), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BundleURL is the server's bundle endpoint.
func (s *Server) BundleURL() string { return fmt.Sprintf("https://127.0.0.1:%d", s.BundlePort) }

// SetFederatedBundle stores other's current bundle in s, the out-of-band
// bootstrap of SPIRE federation; s refreshes it from other's endpoint after.
func (s *Server) SetFederatedBundle(t testing.TB, other *Server) {
	t.Helper()
	path := filepath.Join(s.Dir, other.TD.Name()+".bootstrap.pem")
	other.WriteBundle(t, path)
	s.MustRun(t, "bundle", "set", "-format", "pem", "-id", other.TD.IDString(), "-path", path)
}

// Agent is a running spire-agent.
type Agent struct {
	ID   spiffeid.ID // spiffe://<td>/spire/agent/join_token/<token>
	Sock string
	srv  *Server
}

// Addr is the agent's Workload API address.
func (a *Agent) Addr() string { return "unix://" + a.Sock }

// Entry is a registration entry for StartAgent.
type Entry struct {
	ID            spiffeid.ID
	TTL           time.Duration // X.509-SVID lifetime; 0 for the server's default
	FederatesWith []string      // trust domains whose bundles the workload gets
}

// StartAgent registers entries under a new agent (join token), starts the
// agent and waits until its Workload API offers an SVID for every entry.
func (s *Server) StartAgent(t testing.TB, entries ...Entry) *Agent {
	t.Helper()
	out := s.MustRun(t, "token", "generate", "-ttl", "600")
	var token string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "Token:"); ok {
			token = strings.TrimSpace(v)
		}
	}
	if token == "" || strings.ContainsAny(token, " ") {
		t.Fatalf("spire-server token generate printed %q", out)
	}
	a := &Agent{ID: spiffeid.RequireFromPath(s.TD, "/spire/agent/join_token/"+token), srv: s}
	for _, e := range entries {
		s.Register(t, a, e)
	}
	dir := shortDir(t, "spire-agt")
	a.Sock = filepath.Join(dir, "agent.sock")
	bundle := filepath.Join(dir, "bootstrap.pem")
	s.WriteBundle(t, bundle)
	conf := fmt.Sprintf(`agent {
  data_dir = %q
  log_level = "INFO"
  server_address = "127.0.0.1"
  server_port = "%d"
  socket_path = %q
  trust_bundle_path = %q
  trust_domain = %q
}

plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`, filepath.Join(dir, "data"), s.Port, a.Sock, bundle, s.TD.Name())
	path := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	Run(t, "spire-agent "+s.TD.Name(), filepath.Join(dir, "agent.log"), nil, s.agentBin, "run", "-config", path, "-joinToken", token)
	want := make([]spiffeid.ID, len(entries))
	for i, e := range entries {
		want[i] = e.ID
	}
	a.WaitFor(t, want...)
	return a
}

// Register creates a registration entry for e under agent a, selecting this
// process's user.
func (s *Server) Register(t testing.TB, a *Agent, e Entry) {
	t.Helper()
	args := []string{"entry", "create", "-parentID", a.ID.String(), "-spiffeID", e.ID.String(),
		"-selector", "unix:uid:" + strconv.Itoa(os.Getuid())}
	if e.TTL > 0 {
		args = append(args, "-x509SVIDTTL", strconv.Itoa(int(e.TTL/time.Second)))
	}
	for _, td := range e.FederatesWith {
		args = append(args, "-federatesWith", "spiffe://"+td)
	}
	s.MustRun(t, args...)
}

// WaitFor waits until the agent's Workload API offers an SVID for each id.
func (a *Agent) WaitFor(t testing.TB, ids ...spiffeid.ID) {
	t.Helper()
	waitFor(t, fmt.Sprintf("the SPIRE agent to offer SVIDs for %v", ids), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		xc, err := workloadapi.FetchX509Context(ctx, workloadapi.WithAddr(a.Addr()))
		if err != nil {
			return err
		}
		for _, id := range ids {
			found := false
			for _, s := range xc.SVIDs {
				found = found || s.ID == id
			}
			if !found {
				return fmt.Errorf("no SVID for %s yet", id)
			}
		}
		return nil
	})
}

// Run runs a long-lived program with env added to the test's environment,
// logging to logPath, and stops it (SIGTERM, then SIGKILL) at the end of the
// test; if the test failed, the log's tail is printed. ssotest runs its
// servers with it too.
func Run(t testing.TB, name, logPath string, env []string, bin string, args ...string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", name, tail(logPath, 40))
		}
	})
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor calls try every 200 ms until it succeeds, for at most startTimeout.
func waitFor(t testing.TB, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
