package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// apiClient is a raw v1 API client for one identity, for tests that need to step
// outside what lex does.
type apiClient struct {
	t    testing.TB
	env  *gatewaytest.Env
	svid *x509svid.SVID
	http *http.Client
}

func loadSVID(t testing.TB, env *gatewaytest.Env, id string) *x509svid.SVID {
	t.Helper()
	s, err := certs.LoadSVID(env.SVIDFiles(id))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadBundles(t testing.TB, env *gatewaytest.Env) *x509bundle.Set {
	t.Helper()
	b, err := certs.LoadBundles(env.Bundles())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tlsFor is the client TLS config presenting svid (none if nil).
func tlsFor(t testing.TB, env *gatewaytest.Env, svid *x509svid.SVID) *tls.Config {
	gw := tlsconfig.AuthorizeID(spiffeid.RequireFromString(gatewaytest.GatewayID))
	var c *tls.Config
	if svid == nil {
		c = tlsconfig.TLSClientConfig(loadBundles(t, env), gw)
	} else {
		c = tlsconfig.MTLSClientConfig(svid, loadBundles(t, env), gw)
	}
	c.MinVersion = tls.VersionTLS13
	return c
}

func httpClient(t testing.TB, tlsConf *tls.Config, overQUIC bool) *http.Client {
	var rt http.RoundTripper
	if overQUIC {
		tr := &http3.Transport{TLSClientConfig: tlsConf, QUICConfig: &quic.Config{HandshakeIdleTimeout: 3 * time.Second}}
		t.Cleanup(func() { tr.Close() })
		rt = tr
	} else {
		tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		rt = tr
	}
	return &http.Client{Transport: rt, Timeout: 30 * time.Second}
}

func newAPIClient(t testing.TB, env *gatewaytest.Env, id string, overQUIC bool) *apiClient {
	svid := loadSVID(t, env, id)
	return &apiClient{t: t, env: env, svid: svid, http: httpClient(t, tlsFor(t, env, svid), overQUIC)}
}

// do sends a request and returns the status and body.
func (c *apiClient) do(method, path string, body io.Reader, hdr map[string]string) (int, []byte, http.Header) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, "https://"+c.env.Addr+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func (c *apiClient) json(method, path string, in any) (int, []byte) {
	c.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	st, b, _ := c.do(method, path, body, map[string]string{"Content-Type": "application/json"})
	return st, b
}

func (c *apiClient) upload(id string, off int64, data []byte) (int, []byte, http.Header) {
	return c.do(http.MethodPatch, api.PathTransfer+id+"/content", bytes.NewReader(data), map[string]string{
		api.HeaderUploadOffset: strconv.FormatInt(off, 10), "Content-Type": api.ContentTypeChunk})
}

// register makes an age identity for the client and registers it.
func (c *apiClient) register() *age.HybridIdentity {
	c.t.Helper()
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		c.t.Fatal(err)
	}
	if st, b := c.json(http.MethodPut, api.PathKeys, api.KeysRequest{Recipients: []string{id.Recipient().String()}}); st != http.StatusOK {
		c.t.Fatalf("register: %d %s", st, b)
	}
	return id
}

// encrypt age-encrypts plaintext to recipients.
func encrypt(t testing.TB, plaintext []byte, recips ...age.Recipient) []byte {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recips...)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plaintext)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// create signs a manifest for ciphertext (claiming hash sum) and posts it.
func (c *apiClient) create(to []string, labels []string, ciphertext []byte, sum []byte) (int, api.Transfer, api.Error) {
	c.t.Helper()
	if sum == nil {
		s := sha256.Sum256(ciphertext)
		sum = s[:]
	}
	id, _ := x509svid.IDFromCert(c.svid.Certificates[0])
	sm, err := api.Sign(api.Manifest{Sender: id.String(), Recipients: to, Matter: "HL-2026-0042", Labels: labels,
		FileCount: 1, PlaintextSize: int64(len(ciphertext)), CiphertextSize: int64(len(ciphertext)),
		CiphertextSHA256: hex.EncodeToString(sum)}, c.svid.PrivateKey, c.svid.Certificates)
	if err != nil {
		c.t.Fatal(err)
	}
	st, b := c.json(http.MethodPost, api.PathTransfers, api.CreateTransferRequest{Manifest: *sm})
	var tr api.Transfer
	var e api.Error
	if st < 300 {
		json.Unmarshal(b, &tr)
	} else {
		json.Unmarshal(b, &e)
	}
	return st, tr, e
}
