package gateway_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"filippo.io/age"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

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

func loadSVID(t testing.TB, env *gatewaytest.Env, id string) *x509svid.SVID { return env.LoadSVID(id) }

// tlsFor is the client TLS config presenting svid (none if nil).
func tlsFor(t testing.TB, env *gatewaytest.Env, svid *x509svid.SVID) *tls.Config {
	return env.TLSConfig(svid)
}

func httpClient(t testing.TB, tlsConf *tls.Config, overQUIC bool) *http.Client {
	return gatewaytest.HTTPClient(t, tlsConf, overQUIC)
}

func newAPIClient(t testing.TB, env *gatewaytest.Env, id string, overQUIC bool) *apiClient {
	svid := loadSVID(t, env, id)
	return &apiClient{t: t, env: env, svid: svid, http: httpClient(t, tlsFor(t, env, svid), overQUIC)}
}

// raw is the same client as a gatewaytest.Client, which does the work.
func (c *apiClient) raw() *gatewaytest.Client { return c.env.ClientWith(c.t, c.svid, c.http) }

// do sends a request and returns the status and body.
func (c *apiClient) do(method, path string, body io.Reader, hdr map[string]string) (int, []byte, http.Header) {
	c.t.Helper()
	return c.raw().Do(method, path, body, hdr)
}

func (c *apiClient) json(method, path string, in any) (int, []byte) {
	c.t.Helper()
	return c.raw().JSON(method, path, in)
}

func (c *apiClient) upload(id string, off int64, data []byte) (int, []byte, http.Header) {
	c.t.Helper()
	return c.raw().Upload(id, off, data)
}

// register makes an age identity for the client and registers it.
func (c *apiClient) register() *age.HybridIdentity {
	c.t.Helper()
	return c.raw().Register()
}

// encrypt age-encrypts plaintext to recipients.
func encrypt(t testing.TB, plaintext []byte, recips ...age.Recipient) []byte {
	return gatewaytest.Encrypt(t, plaintext, recips...)
}

// create signs a manifest for ciphertext (claiming hash sum) and posts it.
func (c *apiClient) create(to []string, labels []string, ciphertext []byte, sum []byte) (int, api.Transfer, api.Error) {
	c.t.Helper()
	return c.raw().Create(to, labels, ciphertext, sum)
}
