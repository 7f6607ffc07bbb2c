package cli_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestGatewayParallelReceiveAfterCut cuts the link in the middle of a parallel
// download: lex fails, leaving in its cache a whole prefix of the ciphertext and
// nothing else; once the link is back, the same command resumes from there.
func TestGatewayParallelReceiveAfterCut(t *testing.T) {
	defer cli.SetMinRange(256 << 10)()
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	data := make([]byte, 6<<20)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "exhibit.bin")
	os.WriteFile(src, data, 0o600)
	out := mustLex(t, alice, "send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2026-0079", src)
	var sent struct{ ID string }
	json.Unmarshal([]byte(out), &sent)
	ciphertext, err := os.ReadFile(env.SpoolFiles()[0])
	if err != nil {
		t.Fatal(err)
	}

	proxy := startDownCut(t, env.Addr, 3<<20)
	cfg, _ := os.ReadFile(team)
	viaProxy := filepath.Join(filepath.Dir(team), "via-proxy.yaml")
	os.WriteFile(viaProxy, bytes.Replace(cfg, []byte("gateway: "+env.Addr), []byte("gateway: "+proxy.addr()), 1), 0o600)
	dest := filepath.Join(t.TempDir(), "in")
	args := []string{"-v", "--reconnect", "1s", "receive", sent.ID, "-o", dest, "--streams", "4"}
	if code, _, errOut := lex(t, viaProxy, args...); code == 0 {
		t.Fatalf("receive over a cut link succeeded:\n%s", errOut)
	}
	cache := filepath.Join(filepath.Dir(team), "cache", "incoming", sent.ID+".age")
	partial, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(partial) >= len(ciphertext) || !bytes.Equal(partial, ciphertext[:len(partial)]) {
		t.Fatalf("after the cut the cache holds %d bytes that are not a prefix of the %d-byte ciphertext", len(partial), len(ciphertext))
	}
	t.Logf("the cache holds a whole prefix of %d bytes after the cut", len(partial))

	proxy.heal()
	code, _, errOut := lex(t, viaProxy, args...)
	if want := fmt.Sprintf("from byte %d of", len(partial)); code != 0 || (len(partial) > 0 && !strings.Contains(errOut, want)) {
		t.Fatalf("second receive: exit %d, want stderr with %q:\n%s", code, want, errOut)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "exhibit.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received file differs (%v)", err)
	}
}
