package gateway_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"net/http"
	"strconv"
	"testing"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// BenchmarkUpload measures one ciphertext upload through the whole gateway (mTLS,
// core, policy, store with fsync) per protocol, without lex's encryption in front.
// ageHeader returns the header of a real age file, MAC line included.
func ageHeader(t testing.TB) []byte {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f := encrypt(t, nil, id.Recipient())
	return f[:bytes.Index(f, []byte("\n---"))+len("\n--- ")+43+1]
}

func BenchmarkUpload(b *testing.B) {
	const size = 256 << 20
	ct := make([]byte, size)
	rand.Read(ct)
	copy(ct, ageHeader(b)) // random bytes behind a real age header, which the gateway checks
	for _, proto := range []string{"h3", "h2", "http/1.1"} {
		b.Run(proto, func(b *testing.B) {
			env := gatewaytest.Start(b)
			alice := newAPIClient(b, env, gatewaytest.Alice, proto == "h3")
			if proto == "http/1.1" {
				tc := tlsFor(b, env, alice.svid)
				tc.NextProtos = []string{"http/1.1"}
				tr := &http.Transport{TLSClientConfig: tc, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
					WriteBufferSize: 256 << 10, ReadBufferSize: 256 << 10}
				b.Cleanup(tr.CloseIdleConnections)
				alice.http = &http.Client{Transport: tr}
			}
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				st, xfer, e := alice.create([]string{gatewaytest.Team}, nil, ct, nil)
				if st != http.StatusCreated {
					b.Fatalf("create: %d %+v", st, e)
				}
				b.StartTimer()
				req, _ := http.NewRequest(http.MethodPatch, "https://"+env.Addr+api.PathTransfer+xfer.ID+"/content", bytes.NewReader(ct))
				req.Header.Set(api.HeaderUploadOffset, "0")
				req.Header.Set("Content-Type", api.ContentTypeChunk)
				resp, err := alice.http.Do(req)
				if err != nil || resp.StatusCode != http.StatusNoContent {
					b.Fatalf("upload: %v %v", err, resp)
				}
				resp.Body.Close()
				if resp.Header.Get(api.HeaderUploadOffset) != strconv.Itoa(size) {
					b.Fatal("short upload")
				}
			}
		})
	}
}
