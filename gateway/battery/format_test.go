package battery_test

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestFormat: ciphertext whose age header no recipient could (or should) open is
// refused by the structural pre-check at upload (package agecheck), not at the
// recipient: 400 with a message naming the header line, and not a byte kept.
func TestFormat(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	defer memoryNow(t, env).back(t)
	alice := env.NewClient(gatewaytest.Alice, false).In(t)
	team := env.NewClient(gatewaytest.Team, false).In(t)
	key := team.Register()
	good := gatewaytest.Encrypt(t, bytes.Repeat([]byte("exhibit "), 1000), key.Recipient())
	i := bytes.Index(good, []byte("\n---"))
	version, stanzas, macAndBody := good[:bytes.IndexByte(good, '\n')+1], good[bytes.IndexByte(good, '\n')+1:i+1], good[i+1:]
	firstStanza := stanzas
	if j := bytes.Index(stanzas, []byte("\n->")); j >= 0 {
		firstStanza = stanzas[:j+1]
	}
	if !bytes.HasPrefix(stanzas, []byte("-> ")) || bytes.Count(firstStanza, []byte("->")) != 1 {
		t.Fatalf("unexpected header layout:\n%s", good[:i])
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// The body's last base64 character with a non-zero unused bit.
	lastLine := bytes.LastIndexByte(firstStanza[:len(firstStanza)-1], '\n') + 1
	nonCanon := bytes.Clone(firstStanza)
	c := nonCanon[len(nonCanon)-2]
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	nonCanon[len(nonCanon)-2] = alphabet[strings.IndexByte(alphabet, c)|1]
	if len(nonCanon)-1-lastLine == 0 || (len(nonCanon)-1-lastLine)%4 == 0 || c == nonCanon[len(nonCanon)-2] {
		t.Skip("this body's last line has no unused bits to flip") // a 4-aligned last line
	}
	scrypt, _ := age.NewScryptRecipient("correct horse battery staple")
	scrypt.SetWorkFactor(10)
	scryptFile := gatewaytest.Encrypt(t, []byte("x"), scrypt)
	rows := []struct {
		name string
		ct   []byte
		want string
	}{
		{"truncated header", good[:len(version)+20], "ends before its MAC line"},
		{"non-canonical base64", cat(version, nonCanon, stanzas[len(firstStanza):], macAndBody), "not canonical"},
		{"thousands of stanzas", cat(version, bytes.Repeat(firstStanza, 3000), macAndBody), "more than 64"},
		{"very long header line", cat(version, []byte("-> X25519 "+strings.Repeat("A", 100<<10)+"\n\n"), macAndBody), "more than 4096"},
		{"scrypt stanza", scryptFile, "scrypt"},
		{"not age at all", bytes.Repeat([]byte("MZ\x90\x00"), 1024), "version line"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			st, xfer, e := alice.Create([]string{gatewaytest.Team}, nil, row.ct, nil)
			if st != http.StatusCreated {
				t.Fatalf("create: %d %+v", st, e)
			}
			before := env.StoreStats()
			st, b, h := alice.Upload(xfer.ID, 0, row.ct)
			if st != http.StatusBadRequest || !strings.Contains(string(b), "age header") || !strings.Contains(string(b), row.want) {
				t.Fatalf("upload: %d %s; want 400 naming the age header and %q", st, b, row.want)
			}
			if h.Get(api.HeaderUploadOffset) != "" && h.Get(api.HeaderUploadOffset) != "0" {
				t.Errorf("offset after a refused header: %s", h.Get(api.HeaderUploadOffset))
			}
			if after := env.StoreStats(); after != before {
				t.Errorf("store changed: %+v → %+v", before, after)
			}
			_, _, h = alice.Do(http.MethodHead, api.PathTransfer+xfer.ID+"/content", nil, nil)
			if off := h.Get(api.HeaderUploadOffset); off != "0" {
				t.Errorf("durable offset %s after a refused header, want 0", off)
			}
			for _, f := range env.SpoolFiles() {
				if fi, err := os.Stat(f); err == nil && strings.Contains(f, xfer.ID) && fi.Size() > 0 {
					t.Errorf("spool keeps %d bytes of a refused file: %s", fi.Size(), f)
				}
			}
			if st, _, _ := team.Do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil); st == http.StatusOK {
				t.Error("a refused file was delivered")
			}
		})
	}
}
