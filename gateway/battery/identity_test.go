package battery_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// impersonation are headers that proxies and other gateways use to pass a
// client identity along; lexgate takes identity from the verified certificate
// alone, so each names the review team while alice's certificate is presented.
var impersonation = map[string]string{
	"X-Spiffe-Id":              gatewaytest.Team,
	"X-Forwarded-Client-Cert":  "By=" + gatewaytest.GatewayID + ";URI=" + gatewaytest.Team,
	"X-Client-Cert":            gatewaytest.Team,
	"X-Ssl-Client-S-Dn":        "CN=review-team,O=manila-lpo.example",
	"X-Remote-User":            gatewaytest.Team,
	"X-Lexgate-Caller":         gatewaytest.Team,
	"Forwarded":                "for=127.0.0.1;by=" + gatewaytest.Team,
	"Authorization":            "Bearer " + gatewaytest.Team,
	"X-Forwarded-User":         gatewaytest.Team,
	"X-Authenticated-Identity": gatewaytest.Team,
}

// TestIdentityFromCertificateOnly: with every impersonation header set, alice
// still sees her own inbox, cannot download the team's transfer (404, as for a
// transfer that does not exist), and a key she registers is hers, not the team's.
func TestIdentityFromCertificateOnly(t *testing.T) {
	env := gatewaytest.Start(t)
	defer memoryNow(t, env).back(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			alice := env.NewClient(gatewaytest.Alice, tr.quic).In(t)
			team := env.NewClient(gatewaytest.Team, tr.quic).In(t)
			key := team.Register()
			ct := gatewaytest.Encrypt(t, []byte("privileged memo"), key.Recipient())
			st, xfer, e := alice.Create([]string{gatewaytest.Team}, nil, ct, nil)
			if st != http.StatusCreated {
				t.Fatalf("create: %d %+v", st, e)
			}
			if st, b, _ := alice.Upload(xfer.ID, 0, ct); st != http.StatusNoContent {
				t.Fatalf("upload: %d %s", st, b)
			}
			from := lines(env.Logs())
			if st, b, _ := alice.Do(http.MethodGet, api.PathInbox, nil, impersonation); st != http.StatusOK || strings.Contains(string(b), xfer.ID) {
				t.Errorf("inbox with impersonation headers: %d %s; want alice's own (empty) inbox", st, b)
			}
			if st, _, _ := alice.Do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, impersonation); st != http.StatusNotFound {
				t.Errorf("download as the team by header: %d, want 404", st)
			}
			id, _ := age.GenerateHybridIdentity()
			hdr := map[string]string{"Content-Type": "application/json"}
			for k, v := range impersonation {
				hdr[k] = v
			}
			body, _ := json.Marshal(api.KeysRequest{Recipients: []string{id.Recipient().String()}})
			if st, b, _ := alice.Do(http.MethodPut, api.PathKeys, strings.NewReader(string(body)), hdr); st != http.StatusOK {
				t.Fatalf("register with impersonation headers: %d %s", st, b)
			}
			_, b := alice.JSON(http.MethodGet, api.PathKeys+"?id="+gatewaytest.Team, nil)
			if strings.Contains(string(b), id.Recipient().String()) {
				t.Errorf("the key alice registered became the team's: %s", b)
			}
			_, b = alice.JSON(http.MethodGet, api.PathKeys+"?id="+gatewaytest.Alice, nil)
			if !strings.Contains(string(b), id.Recipient().String()) {
				t.Errorf("the key alice registered is not hers: %s", b)
			}
			logs := tail(env.Logs(), from)
			if strings.Contains(logs, `"caller":"`+gatewaytest.Team+`"`) {
				t.Errorf("a request was logged as the team's:\n%s", logs)
			}
		})
	}
}
