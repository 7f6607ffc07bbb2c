package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// cutProxy forwards TCP connections to a gateway and, once cutAt bytes have gone
// from client to gateway (or, with down, from gateway to client), cuts every
// connection and refuses new ones: a link that drops in the middle of an upload
// or a download, for real.
type cutProxy struct {
	ln     net.Listener
	target string
	down   bool // count the gateway's bytes to the client instead
	cutAt  atomic.Int64
	sent   atomic.Int64
	dead   atomic.Bool
	// healOnCut makes the cut a blip: connections made after it go through.
	healOnCut atomic.Bool
	mu        sync.Mutex
	conns     []net.Conn
}

// startCutProxy cuts after cutAt bytes of uploads.
func startCutProxy(t *testing.T, target string, cutAt int64) *cutProxy {
	return newCutProxy(t, target, cutAt, false)
}

// startDownCut cuts after cutAt bytes of downloads.
func startDownCut(t *testing.T, target string, cutAt int64) *cutProxy {
	return newCutProxy(t, target, cutAt, true)
}

func newCutProxy(t *testing.T, target string, cutAt int64, down bool) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, down: down}
	p.cutAt.Store(cutAt)
	t.Cleanup(func() { ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.dead.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(up, c, p.down)
		go p.pipe(c, up, !p.down)
	}
}

// pipe copies from to to; on the counted direction it cuts the link once cutAt
// bytes have passed in all.
func (p *cutProxy) pipe(from, to net.Conn, counted bool) {
	if !counted {
		io.Copy(to, from)
		to.Close()
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if p.sent.Add(int64(n)) >= p.cutAt.Load() {
				p.cut()
				if p.healOnCut.Load() {
					p.heal()
				}
				return
			}
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			to.Close()
			return
		}
	}
}

// heal lets connections through again, for good.
func (p *cutProxy) heal() {
	p.cutAt.Store(math.MaxInt64)
	p.dead.Store(false)
}

func (p *cutProxy) cut() {
	p.dead.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// rawClient speaks the v1 API directly with one identity's SVID over TCP, for a
// sender that does what lex would never do (a malicious bundle) or a test that
// wants the raw ciphertext.
type rawClient struct {
	t    *testing.T
	env  *gatewaytest.Env
	svid *x509svid.SVID
	http *http.Client
}

func newRawClient(t *testing.T, env *gatewaytest.Env, id string) *rawClient {
	svid, err := certs.LoadSVID(env.SVIDFiles(id))
	if err != nil {
		t.Fatal(err)
	}
	bundles, err := certs.LoadBundles(env.Bundles())
	if err != nil {
		t.Fatal(err)
	}
	conf := tlsconfig.MTLSClientConfig(svid, bundles, tlsconfig.AuthorizeID(spiffeid.RequireFromString(gatewaytest.GatewayID)))
	conf.MinVersion = tls.VersionTLS13
	tr := &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &rawClient{t: t, env: env, svid: svid, http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

func (c *rawClient) do(method, path string, body []byte, hdr ...string) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, "https://"+c.env.Addr+path, bytes.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// recipient fetches id's registered age recipient.
func (c *rawClient) recipient(id string) age.Recipient {
	c.t.Helper()
	st, b := c.do(http.MethodGet, api.PathKeys+"?id="+id, nil)
	var k api.KeysResponse
	if st != http.StatusOK || json.Unmarshal(b, &k) != nil || len(k.Recipients) == 0 {
		c.t.Fatalf("keys of %s: %d %s", id, st, b)
	}
	r, err := age.ParseHybridRecipient(k.Recipients[0])
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// sendRaw encrypts plaintext to the recipient's key, signs a manifest and uploads
// it through the real gateway. It returns the transfer id.
func (c *rawClient) sendRaw(to string, plaintext []byte, files int) string {
	c.t.Helper()
	var ct bytes.Buffer
	w, _ := age.Encrypt(&ct, c.recipient(to))
	w.Write(plaintext)
	w.Close()
	sum := sha256.Sum256(ct.Bytes())
	id, _ := x509svid.IDFromCert(c.svid.Certificates[0])
	sm, err := api.Sign(api.Manifest{Sender: id.String(), Recipients: []string{to}, Matter: "HL-2026-0666",
		FileCount: files, PlaintextSize: int64(len(plaintext)), CiphertextSize: int64(ct.Len()),
		CiphertextSHA256: hex.EncodeToString(sum[:])}, c.svid.PrivateKey, c.svid.Certificates)
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := json.Marshal(api.CreateTransferRequest{Manifest: *sm})
	st, b := c.do(http.MethodPost, api.PathTransfers, body, "Content-Type", "application/json")
	var tr api.Transfer
	if st != http.StatusCreated || json.Unmarshal(b, &tr) != nil {
		c.t.Fatalf("create: %d %s", st, b)
	}
	if st, b := c.do(http.MethodPatch, api.PathTransfer+tr.ID+"/content", ct.Bytes(),
		api.HeaderUploadOffset, "0", "Content-Type", api.ContentTypeChunk); st != http.StatusNoContent {
		c.t.Fatalf("upload: %d %s", st, b)
	}
	return tr.ID
}
