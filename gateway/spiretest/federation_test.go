package spiretest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/identity"
	"github.com/lexgate/lexgate/gateway/spiretest"
)

// issuer returns the authority key ID of the SVID the agent now offers for id.
func issuer(t testing.TB, agent *spiretest.Agent, id string) string {
	t.Helper()
	xc, err := workloadapi.FetchX509Context(t.Context(), workloadapi.WithAddr(agent.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range xc.SVIDs {
		if s.ID.String() == id {
			return fmt.Sprintf("%x", s.Certificates[0].AuthorityKeyId)
		}
	}
	t.Fatalf("the agent offers no SVID for %s", id)
	return ""
}

// TestSPIREFederation: two organisations, each with its own SPIRE server,
// federated through their bundle endpoints. The gateway (harbor-law.example)
// fetches manila-lpo.example's bundle from manila's endpoint with go-spiffe's
// federation package; the review team's lex gets harbor's bundle from its own
// SPIRE agent (SPIRE federation). Manila's CA lives two minutes, so SPIRE
// rotates it during the run: alice's sends keep reaching the team, before
// and after the team's SVIDs are issued by the new CA, with no restart. Then
// manila's bundle endpoint becomes unreachable: the gateway keeps the last
// good bundle and the team is still served.
func TestSPIREFederation(t *testing.T) {
	pHarbor, pManila := spiretest.FreePort(t), spiretest.FreePort(t)
	harborSrv := spiretest.StartServer(t, harbor, spiretest.Options{SVIDTTL: time.Minute, BundleEndpoint: true, BundlePort: pHarbor,
		Federation: []spiretest.Peer{{TrustDomain: manila, URL: fmt.Sprintf("https://127.0.0.1:%d", pManila), EndpointID: "spiffe://" + manila + "/spire/server"}}})
	manilaSrv := spiretest.StartServer(t, manila, spiretest.Options{SVIDTTL: 15 * time.Second, CATTL: 2 * time.Minute, BundleEndpoint: true, BundlePort: pManila,
		Federation: []spiretest.Peer{{TrustDomain: harbor, URL: fmt.Sprintf("https://127.0.0.1:%d", pHarbor), EndpointID: "spiffe://" + harbor + "/spire/server"}}})
	harborSrv.SetFederatedBundle(t, manilaSrv)
	manilaSrv.SetFederatedBundle(t, harborSrv)

	harborAgent := harborSrv.StartAgent(t,
		spiretest.Entry{ID: spiffeid.RequireFromString(gatewaytest.GatewayID)},
		// Alice checks the team's owner-signed key registration before she
		// encrypts, against manila's bundle: her agent must hand it out.
		spiretest.Entry{ID: spiffeid.RequireFromString(gatewaytest.Alice), FederatesWith: []string{manila}})
	manilaAgent := manilaSrv.StartAgent(t,
		spiretest.Entry{ID: spiffeid.RequireFromString(gatewaytest.Team), FederatesWith: []string{harbor}})
	bootstrap := filepath.Join(t.TempDir(), "manila-bootstrap.pem")
	manilaSrv.WriteBundle(t, bootstrap)
	// The gateway reaches manila's endpoint through a TCP relay the test
	// can cut, as a partner's network path fails.
	relay := startRelay(t, fmt.Sprintf("127.0.0.1:%d", manilaSrv.BundlePort))

	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC(), gatewaytest.WithConfig(func(c *gateway.Config) {
		c.Identity = identity.Config{WorkloadAPI: harborAgent.Addr(), SPIFFEID: gatewaytest.GatewayID,
			Federation: []identity.Federation{{TrustDomain: manila, BundleEndpoint: "https://" + relay.addr(),
				EndpointSPIFFEID: "spiffe://" + manila + "/spire/server", BootstrapBundle: bootstrap, Refresh: 2 * time.Second}}}
	}))
	alice := lexConfig(t, env, "alice", fmt.Sprintf("workload_api: %s\nspiffe_id: %s\n", harborAgent.Addr(), gatewaytest.Alice), nil)
	team := lexConfig(t, env, "team", fmt.Sprintf("workload_api: %s\nspiffe_id: %s\n", manilaAgent.Addr(), gatewaytest.Team), nil)
	// The team's agent gets harbor's bundle once manila's server fetched it.
	waitLex(t, team, "inbox")
	for _, c := range []string{alice, team} {
		mustLex(t, c, "keygen")
		mustLex(t, c, "register")
	}
	folder := filepath.Join(t.TempDir(), matter)
	os.MkdirAll(folder, 0o755)
	os.WriteFile(filepath.Join(folder, "brief.txt"), bytes.Repeat([]byte("privileged\n"), 1000), 0o644)

	first := issuer(t, manilaAgent, gatewaytest.Team)
	round := func(n int) {
		t.Helper()
		var sent struct{ ID string }
		// Until harbor's agent hands out manila's bundle, lex refuses the
		// team's registration before it sends a byte; try again until then.
		out := ""
		for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
			code, stdout, errOut := lex(t, alice, "send", "--json", "--to", gatewaytest.Team, "--matter", matter, folder)
			if code == 0 {
				out = stdout
				break
			}
			if !strings.Contains(stdout+errOut, "no X.509 bundle for trust domain") || time.Now().After(deadline) {
				t.Fatalf("round %d: lex send: exit %d\nstdout: %s\nstderr: %s", n, code, stdout, errOut)
			}
		}
		if err := json.Unmarshal([]byte(out), &sent); err != nil {
			t.Fatal(err)
		}
		got := mustLex(t, team, "receive", sent.ID, "-o", t.TempDir(), "--ack")
		if !strings.Contains(got, "from "+gatewaytest.Alice+" (signature verified)") {
			t.Fatalf("round %d: receive printed %q", n, got)
		}
	}
	after := 0 // rounds since the team's SVID came from manila's next CA
	deadline := time.Now().Add(8 * time.Minute)
	n := 1
	for ; after < 2; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %d rounds manila's CA has not rotated", n)
		}
		round(n)
		if issuer(t, manilaAgent, gatewaytest.Team) != first {
			after++
		}
		t.Logf("round %d: team SVID from the next CA: %v", n, after > 0)
	}

	// Manila's bundle endpoint becomes unreachable: the gateway keeps the
	// last good bundle, and the team is still served.
	relay.cut()
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(env.Logs(), "federated bundle fetch failed"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the gateway never noticed the unreachable bundle endpoint")
		}
	}
	round(n)
	if strings.Contains(env.Logs(), "refused TLS handshake") {
		t.Errorf("the gateway refused a handshake:\n%s", env.Logs())
	}
	// The gateway learnt manila's next CA from manila's bundle endpoint (its
	// own agent does not federate): the bootstrap bundle was replaced.
	if !strings.Contains(env.Logs(), "identity: federated bundle updated") {
		t.Errorf("the gateway never updated manila's bundle from its endpoint")
	}
}

// waitLex runs a lex command until it succeeds (a SPIRE agent that has not
// yet received a federated bundle), for at most three minutes.
func waitLex(t testing.TB, config string, args ...string) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		code, _, errOut := lex(t, config, args...)
		if code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lex %v: %s", args, errOut)
		}
	}
}

// relay forwards TCP connections to a target until cut.
type relay struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startRelay(t testing.TB, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, u)
			r.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(r.cut)
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

// cut refuses new connections and closes those open.
func (r *relay) cut() {
	r.ln.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}
