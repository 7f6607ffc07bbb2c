package cli

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/api"
)

// This file is a stand-in gateway for the CLI's own tests: it speaks the v1 API of
// gateway/api over mutual TLS on TCP (HTTP/2) and, optionally, QUIC (HTTP/3) on the
// same port, keeps everything in memory, and can be told to refuse or to break an
// upload half-way. The real gateway's end-to-end tests live with gatewaytest.

// testPKI is two trust domains, a law firm and an LPO site, with files on disk.
type testPKI struct {
	dir     string
	cas     map[string]*certs.CA
	bundles *x509bundle.Set
	paths   map[string]string // trust domain → bundle file
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), cas: map[string]*certs.CA{}, bundles: x509bundle.NewSet(), paths: map[string]string{}}
	for _, name := range []string{"harbor-law.example", "manila-lpo.example"} {
		td := spiffeid.RequireTrustDomainFromString(name)
		ca, err := certs.NewCA(td, 0)
		if err != nil {
			t.Fatal(err)
		}
		p.cas[name] = ca
		p.bundles.Add(ca.Bundle())
		p.paths[name] = filepath.Join(p.dir, name, "bundle.pem")
		if err := certs.WriteBundle(p.paths[name], ca.Bundle()); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (p *testPKI) svid(t *testing.T, id string) *x509svid.SVID {
	t.Helper()
	sid := spiffeid.RequireFromString(id)
	svid, err := p.cas[sid.TrustDomain().Name()].MintSVID(sid, certs.SVIDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svid
}

// testUser is a lex user with its own config directory.
type testUser struct {
	id     spiffeid.ID
	config string
}

// user writes a config for id, talking to gateway addr whose ID is gatewayID.
func (p *testPKI) user(t *testing.T, id, addr, gatewayID string) *testUser {
	t.Helper()
	dir := t.TempDir()
	if err := certs.WriteSVID(filepath.Join(dir, "svid.crt"), filepath.Join(dir, "svid.key"), p.svid(t, id)); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("gateway: %s\ngateway_id: %s\nsvid_cert: svid.crt\nsvid_key: svid.key\ncache_dir: cache\nbundles:\n", addr, gatewayID)
	for td, path := range p.paths {
		cfg += fmt.Sprintf("  %s: %s\n", td, path)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testUser{id: spiffeid.RequireFromString(id), config: path}
}

// lex runs Main as u and returns the exit code, stdout and stderr.
func (u *testUser) lex(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), append([]string{"--config", u.config}, args...), nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

const gatewayID = "spiffe://harbor-law.example/gateway"

// fakeGW is the in-memory gateway.
type fakeGW struct {
	addr    string
	bundles *x509bundle.Set

	mu        sync.Mutex
	keys      map[string][]string
	transfers map[string]*fakeTransfer
	byHash    map[string]string
	deny      []api.Reason // refuse every transfer with these reasons
	breakAt   int64        // when > 0, uploads stop with 503 once this many bytes are held
	patches   int
}

type fakeTransfer struct {
	t    api.Transfer
	data []byte
}

// startFakeGW serves on 127.0.0.1: TCP always, UDP (QUIC) when quic is set.
func startFakeGW(t *testing.T, p *testPKI, withQUIC bool) *fakeGW {
	t.Helper()
	g := &fakeGW{bundles: p.bundles, keys: map[string][]string{}, transfers: map[string]*fakeTransfer{}, byHash: map[string]string{}}
	tc := tlsconfig.MTLSServerConfig(p.svid(t, gatewayID), p.bundles, tlsconfig.AuthorizeAny())
	tc.MinVersion = tls.VersionTLS13
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	hs := &http.Server{Handler: g.handler(), TLSConfig: tc.Clone()}
	hs.TLSConfig.NextProtos = []string{"h2"}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	if withQUIC {
		udp, err := net.ListenPacket("udp", g.addr)
		if err != nil {
			t.Skipf("UDP port %s busy: %v", g.addr, err)
		}
		h3 := &http3.Server{Handler: g.handler(), TLSConfig: http3.ConfigureTLSConfig(tc.Clone())}
		go h3.Serve(udp)
		t.Cleanup(func() { h3.Close(); udp.Close() })
	}
	return g
}

func (g *fakeGW) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/keys", g.putKeys)
	mux.HandleFunc("GET /v1/keys", g.getKeys)
	mux.HandleFunc("POST /v1/transfers", g.create)
	mux.HandleFunc("GET /v1/transfers/{id}", g.get)
	mux.HandleFunc("HEAD /v1/transfers/{id}/content", g.head)
	mux.HandleFunc("PATCH /v1/transfers/{id}/content", g.patch)
	mux.HandleFunc("GET /v1/transfers/{id}/content", g.download)
	mux.HandleFunc("POST /v1/transfers/{id}/ack", g.ack)
	mux.HandleFunc("GET /v1/inbox", g.inbox)
	return mux
}

func caller(r *http.Request) string {
	id, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
	if err != nil {
		panic(err)
	}
	return id.String()
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	reply(w, status, &api.Error{Code: code, Message: msg})
}

func (g *fakeGW) putKeys(w http.ResponseWriter, r *http.Request) {
	var kr api.KeysRequest
	if err := json.NewDecoder(r.Body).Decode(&kr); err != nil {
		fail(w, 400, api.CodeBadRequest, err.Error())
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.keys[caller(r)] = kr.Recipients
	reply(w, 200, api.KeysResponse{ID: caller(r), Recipients: kr.Recipients, Updated: time.Now()})
}

func (g *fakeGW) getKeys(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	id := r.URL.Query().Get("id")
	rs, ok := g.keys[id]
	if !ok {
		fail(w, 404, api.CodeNotFound, "no keys for "+id)
		return
	}
	reply(w, 200, api.KeysResponse{ID: id, Recipients: rs, Updated: time.Now()})
}

func (g *fakeGW) create(w http.ResponseWriter, r *http.Request) {
	var req api.CreateTransferRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, 400, api.CodeBadRequest, err.Error())
		return
	}
	m, signer, err := req.Manifest.Verify(g.bundles, time.Now())
	if err != nil || signer.String() != caller(r) {
		fail(w, 400, api.CodeBadRequest, fmt.Sprintf("manifest: %v", err))
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deny != nil {
		reply(w, 403, &api.Error{Code: api.CodeDenied, Message: "transfer refused", DecisionID: "d-1", Reasons: g.deny})
		return
	}
	if id, ok := g.byHash[req.Manifest.Hash()]; ok {
		reply(w, 200, g.transfers[id].t)
		return
	}
	id := fmt.Sprintf("t%d", len(g.transfers)+1)
	g.byHash[req.Manifest.Hash()] = id
	g.transfers[id] = &fakeTransfer{t: api.Transfer{
		ID: id, Sender: m.Sender, Recipients: m.Recipients, Matter: m.Matter, Labels: m.Labels,
		FileCount: m.FileCount, PlaintextSize: m.PlaintextSize, CiphertextSize: m.CiphertextSize,
		CiphertextSHA256: m.CiphertextSHA256, ManifestHash: req.Manifest.Hash(), State: api.StateUploading,
		Created: time.Now(), Manifest: req.Manifest,
	}}
	reply(w, 201, g.transfers[id].t)
}

// visible returns the transfer if the caller may see it.
func (g *fakeGW) visible(w http.ResponseWriter, r *http.Request) *fakeTransfer {
	ft := g.transfers[r.PathValue("id")]
	if ft == nil || (ft.t.Sender != caller(r) && !slices.Contains(ft.t.Recipients, caller(r))) {
		fail(w, 404, api.CodeNotFound, "no such transfer")
		return nil
	}
	return ft
}

func (g *fakeGW) get(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ft := g.visible(w, r); ft != nil {
		ft.t.Offset = int64(len(ft.data))
		reply(w, 200, ft.t)
	}
}

func (g *fakeGW) head(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ft := g.visible(w, r); ft != nil {
		w.Header().Set(api.HeaderUploadOffset, strconv.Itoa(len(ft.data)))
	}
}

func (g *fakeGW) patch(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ft := g.visible(w, r)
	if ft == nil {
		return
	}
	g.patches++
	off, _ := strconv.ParseInt(r.Header.Get(api.HeaderUploadOffset), 10, 64)
	if off != int64(len(ft.data)) {
		reply(w, 409, &api.Error{Code: api.CodeConflict, Message: "offset mismatch", Offset: int64(len(ft.data))})
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fail(w, 400, api.CodeBadRequest, err.Error())
		return
	}
	if g.breakAt > 0 && off+int64(len(body)) > g.breakAt {
		ft.data = append(ft.data, body[:max(g.breakAt-off, 0)]...)
		fail(w, 503, api.CodeUnavailable, "shutting down")
		return
	}
	ft.data = append(ft.data, body...)
	if int64(len(ft.data)) == ft.t.CiphertextSize {
		sum := sha256.Sum256(ft.data)
		if hex.EncodeToString(sum[:]) != ft.t.CiphertextSHA256 {
			ft.t.State = api.StateQuarantined
			fail(w, 422, api.CodeHashMismatch, "hash mismatch")
			return
		}
		ft.t.State = api.StateReady
	}
	w.Header().Set(api.HeaderUploadOffset, strconv.Itoa(len(ft.data)))
	w.WriteHeader(http.StatusNoContent)
}

func (g *fakeGW) download(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	ft := g.visible(w, r)
	g.mu.Unlock()
	if ft == nil {
		return
	}
	if ft.t.State != api.StateReady && ft.t.State != api.StateAcknowledged {
		fail(w, 409, api.CodeNotReady, "not ready")
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(ft.data))
}

func (g *fakeGW) ack(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ft := g.visible(w, r); ft != nil {
		ft.t.State = api.StateAcknowledged
		reply(w, 200, ft.t)
	}
}

func (g *fakeGW) inbox(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ir := api.InboxResponse{Transfers: []api.Transfer{}}
	for _, ft := range g.transfers {
		if ft.t.State == api.StateReady && slices.Contains(ft.t.Recipients, caller(r)) {
			ir.Transfers = append(ir.Transfers, ft.t)
		}
	}
	reply(w, 200, ir)
}

// writeSVIDFiles replaces a test user's SVID files.
func writeSVIDFiles(dir string, svid *x509svid.SVID) error {
	return certs.WriteSVID(filepath.Join(dir, "svid.crt"), filepath.Join(dir, "svid.key"), svid)
}
