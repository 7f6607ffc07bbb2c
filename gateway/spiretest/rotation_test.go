package spiretest_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"golang.org/x/crypto/ssh"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/identity"
	"github.com/lexgate/lexgate/gateway/sftpfront"
	"github.com/lexgate/lexgate/gateway/spiretest"
)

const (
	harbor = "harbor-law.example"
	manila = "manila-lpo.example"
	matter = "HL-2026-0042"
)

func lex(t testing.TB, config string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(t.Context(), append([]string{"--config", config}, args...), nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustLex(t testing.TB, config string, args ...string) string {
	t.Helper()
	code, out, errOut := lex(t, config, args...)
	if code != 0 {
		t.Fatalf("lex %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// lexConfig writes a lex config: identity lines (svid files or workload API)
// and the bundles given, beside the env's gateway and log key.
func lexConfig(t testing.TB, env *gatewaytest.Env, name string, identityLines string, bundles map[string]string) string {
	t.Helper()
	home := filepath.Join(env.Dir, "spire-clients", name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "gateway: %s\ngateway_id: %s\n%sidentity: %s\ncache_dir: %s\nlog_key: %s\n",
		env.Addr, gatewaytest.GatewayID, identityLines, filepath.Join(home, "identity.age"), filepath.Join(home, "cache"), env.Gateway.LogKey())
	if len(bundles) > 0 {
		b.WriteString("bundles:\n")
		for td, p := range bundles {
			fmt.Fprintf(&b, "  %s: %s\n", td, p)
		}
	}
	path := filepath.Join(home, "config.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// served opens a new TLS connection to the gateway, as the team, and returns
// the serial number of the SVID the gateway presented.
func served(t testing.TB, env *gatewaytest.Env, bundles *x509bundle.Set) string {
	t.Helper()
	svid := env.LoadSVID(gatewaytest.Team)
	conn, err := tls.Dial("tcp", env.Addr, tlsconfig.MTLSClientConfig(svid, bundles, tlsconfig.AuthorizeID(spiffeid.RequireFromString(gatewaytest.GatewayID))))
	if err != nil {
		t.Fatalf("handshake with the gateway: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// offered returns the serial number of the SVID the agent now offers for id.
func offered(t testing.TB, agent *spiretest.Agent, id string) string {
	t.Helper()
	xc, err := workloadapi.FetchX509Context(t.Context(), workloadapi.WithAddr(agent.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range xc.SVIDs {
		if s.ID.String() == id {
			return s.Certificates[0].SerialNumber.String()
		}
	}
	t.Fatalf("the agent offers no SVID for %s", id)
	return ""
}

// sftpPut uploads data as name into /outbox/team/ on the SFTP front, as the DMS.
func sftpPut(t testing.TB, env *gatewaytest.Env, key gatewaytest.SSHKey, name string, data []byte) {
	t.Helper()
	pem, err := os.ReadFile(key.Private)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(env.Gateway.SFTP().HostPublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ssh.Dial("tcp", env.SFTPAddr(), &ssh.ClientConfig{User: gatewaytest.DMSAccount,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: time.Minute})
	if err != nil {
		t.Fatalf("SFTP login: %v", err)
	}
	defer conn.Close()
	c, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.OpenFile("/outbox/team/"+name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatalf("SFTP create: %v", err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("SFTP write: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("SFTP close: %v", err)
	}
}

// waitInbox returns the transfer from sender in config's inbox, waiting for
// the gateway to seal an SFTP upload (it does so when the file is closed).
func waitInbox(t testing.TB, config, sender string) string {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var r struct {
			Transfers []struct{ ID, Sender string } `json:"transfers"`
		}
		if err := json.Unmarshal([]byte(mustLex(t, config, "inbox", "--json")), &r); err != nil {
			t.Fatal(err)
		}
		for _, tr := range r.Transfers {
			if tr.Sender == sender {
				return tr.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no transfer from %s in the inbox", sender)
		}
	}
}

// TestSPIRERotation: the gateway and lex take their SVIDs from a real SPIRE
// agent whose SVIDs live 20 seconds, so they rotate about every 10. Sends,
// receives (with their receipts) and SFTP logins and uploads run round after
// round until the gateway has presented four different SVIDs in new handshakes
// (three rotations) and alice has signed with three:
// none fails, nothing restarts. A transfer signed in the first round, by an
// SVID long expired by then, is received at the end.
func TestSPIRERotation(t *testing.T) {
	const ttl = 20 * time.Second
	srv := spiretest.StartServer(t, harbor, spiretest.Options{SVIDTTL: ttl})
	gwID := spiffeid.RequireFromString(gatewaytest.GatewayID)
	aliceID := spiffeid.RequireFromString(gatewaytest.Alice)
	agent := srv.StartAgent(t, spiretest.Entry{ID: gwID, TTL: ttl}, spiretest.Entry{ID: aliceID, TTL: ttl})

	key := gatewaytest.NewSSHKey(t, t.TempDir(), "dms_ed25519")
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC(),
		gatewaytest.WithSFTP(map[string]string{"team": gatewaytest.Team},
			sftpfront.Account{Name: gatewaytest.DMSAccount, ID: gatewaytest.DMS, AuthorizedKeys: []string{key.Authorized}, Matter: matter}),
		gatewaytest.WithConfig(func(c *gateway.Config) {
			// harbor-law.example (the gateway's own trust domain) from SPIRE;
			// the partner's bundle from its file.
			c.Identity = identity.Config{WorkloadAPI: agent.Addr(), SPIFFEID: gatewaytest.GatewayID,
				Bundles: map[string]string{manila: c.Identity.Bundles[manila]}}
		}))
	harborBundle := filepath.Join(env.Dir, "harbor-from-spire.pem")
	srv.WriteBundle(t, harborBundle)
	alice := lexConfig(t, env, "alice", fmt.Sprintf("workload_api: %s\nspiffe_id: %s\n", agent.Addr(), gatewaytest.Alice),
		map[string]string{manila: env.Bundles()[manila]})
	cert, k := env.SVIDFiles(gatewaytest.Team)
	team := lexConfig(t, env, "team", fmt.Sprintf("svid_cert: %s\nsvid_key: %s\n", cert, k),
		map[string]string{manila: env.Bundles()[manila], harbor: harborBundle})
	bundles, err := certs.LoadBundles(map[string]string{manila: env.Bundles()[manila], harbor: harborBundle})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{alice, team} {
		mustLex(t, c, "keygen")
		mustLex(t, c, "register")
	}

	folder := filepath.Join(t.TempDir(), matter)
	os.MkdirAll(folder, 0o755)
	os.WriteFile(filepath.Join(folder, "brief.txt"), bytes.Repeat([]byte("privileged\n"), 5000), 0o644)
	send := func() string {
		var r struct{ ID, Receipt string }
		if err := json.Unmarshal([]byte(mustLex(t, alice, "send", "--json", "--to", gatewaytest.Team, "--matter", matter, folder)), &r); err != nil || r.ID == "" || r.Receipt == "" {
			t.Fatalf("send: %+v, %v", r, err)
		}
		return r.ID
	}
	receive := func(id, want string) {
		out := mustLex(t, team, "receive", id, "-o", t.TempDir(), "--ack")
		if !strings.Contains(out, want) || !strings.Contains(out, "with a certificate valid at signing time") {
			t.Fatalf("receive %s printed:\n%s\nwant %q", id, out, want)
		}
	}

	first := send() // received last, long after its signer's SVID expired
	gwSerials, aliceSerials := map[string]bool{}, map[string]bool{}
	deadline := time.Now().Add(8 * time.Minute)
	for round := 1; len(gwSerials) < 4 || len(aliceSerials) < 3; round++ {
		if time.Now().After(deadline) {
			t.Fatalf("after %d rounds the gateway served %d SVIDs and alice had %d; want 4 and 3 (is SPIRE rotating?)", round, len(gwSerials), len(aliceSerials))
		}
		gwSerials[served(t, env, bundles)] = true
		aliceSerials[offered(t, agent, gatewaytest.Alice)] = true
		receive(send(), "from "+gatewaytest.Alice+" (signature verified)")
		sftpPut(t, env, key, fmt.Sprintf("invoice-%d.pdf", round), bytes.Repeat([]byte{byte(round)}, 64<<10))
		receive(waitInbox(t, team, gatewaytest.DMS), "sealed on ingest by "+gatewaytest.GatewayID+" (signature verified)")
		t.Logf("round %d: gateway SVIDs %d, alice's %d", round, len(gwSerials), len(aliceSerials))
	}
	receive(first, "from "+gatewaytest.Alice+" (signature verified)")
	if strings.Contains(env.Logs(), "refused TLS handshake") {
		t.Errorf("the gateway refused a handshake during the rotations:\n%s", env.Logs())
	}
}
