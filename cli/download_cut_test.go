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
// download: lex fails, leaving nothing in the destination but its staging
// directory, and a checkpoint if the pipeline got far enough (its ranges are
// reassembled in a file that is removed); once the link is back, the same
// command resumes from the checkpoint (or starts over without one) and
// delivers the same file.
func TestGatewayParallelReceiveAfterCut(t *testing.T) {
	defer cli.SetMinRange(256 << 10)()
	defer cli.SetCheckpointEvery(8, 4)()
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	data := make([]byte, 6<<20)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "exhibit.bin")
	os.WriteFile(src, data, 0o600)
	out := mustLex(t, alice, "send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2026-0079", src)
	var sent struct{ ID string }
	json.Unmarshal([]byte(out), &sent)

	proxy := startDownCut(t, env.Addr, 3<<20)
	config := viaProxy(t, team, env.Addr, proxy.addr())
	dest := filepath.Join(t.TempDir(), "in")
	args := []string{"-v", "--reconnect", "1s", "receive", sent.ID, "-o", dest, "--streams", "4"}
	if code, _, errOut := lex(t, config, args...); code == 0 {
		t.Fatalf("receive over a cut link succeeded:\n%s", errOut)
	}
	cache := filepath.Join(filepath.Dir(team), "cache", "incoming")
	ents, _ := os.ReadDir(cache)
	var off int64
	switch {
	case len(ents) == 1 && ents[0].Name() == sent.ID+".resume":
		off = checkpointOffset(t, filepath.Join(cache, ents[0].Name()))
		assertOnlyStaging(t, dest)
	case len(ents) == 0:
		assertNothingDelivered(t, dest)
	default:
		t.Fatalf("after the cut the cache holds %v, want a checkpoint at most", ents)
	}
	t.Logf("after the cut: checkpoint at byte %d", off)

	proxy.heal()
	code, _, errOut := lex(t, config, args...)
	if want := fmt.Sprintf("from byte %d of", off); code != 0 || !strings.Contains(errOut, want) {
		t.Fatalf("second receive: exit %d, want stderr with %q:\n%s", code, want, errOut)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "exhibit.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received file differs (%v)", err)
	}
	if ents, _ := os.ReadDir(cache); len(ents) != 0 {
		t.Errorf("the cache holds %v after the receive", ents)
	}
}
