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
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestGatewayParallelReceive fetches a transfer as several Range requests at once
// over QUIC streams and over TCP connections and checks the file that comes
// out. (Resuming one: TestGatewayParallelReceiveAfterCut.)
func TestGatewayParallelReceive(t *testing.T) {
	defer cli.SetMinRange(64 << 10)()
	env, alice, team := setup(t)
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "exhibit.bin")
	os.WriteFile(src, data, 0o600)
	out := mustLex(t, alice, "send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2026-0077", src)
	var sent struct{ ID string }
	if err := json.Unmarshal([]byte(out), &sent); err != nil || sent.ID == "" {
		t.Fatalf("send printed %q: %v", out, err)
	}
	size := spoolSize(t, env, sent.ID)
	for _, tc := range []struct {
		name, transport string
		streams         string
		want            string
	}{
		{"quic streams", "quic", "4", "download: 4 parallel ranges"},
		{"tcp connections", "tcp", "3", "download: 3 parallel ranges"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "in")
			code, _, errOut := lex(t, team, "-v", "--transport", tc.transport, "receive", sent.ID, "-o", dest, "--streams", tc.streams)
			if code != 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("receive: exit %d, want stderr with %q:\n%s", code, tc.want, errOut)
			}
			if want := fmt.Sprintf("from byte 0 of %d", size); !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
			got, err := os.ReadFile(filepath.Join(dest, "exhibit.bin"))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("received file differs (%v)", err)
			}
		})
	}
}

func TestReceiveStreamsFlag(t *testing.T) {
	_, _, team := setup(t)
	code, _, errOut := lex(t, team, "receive", "x", "-o", t.TempDir(), "--streams", "100")
	if code != cli.ExitUsage || !strings.Contains(errOut, "--streams 100") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// TestGatewayBulkPath: auto sends ciphertext over TCP beside a QUIC control
// connection and says why; --transport quic keeps it on QUIC.
func TestGatewayBulkPath(t *testing.T) {
	_, alice, _ := setup(t)
	folder := caseFolder(t)
	// auto must find QUIC: a slow machine's handshake gets a minute, not
	// the short timeout TestMain sets for the fallback tests.
	defer cli.SetQUICTimeout(time.Minute)()
	for _, tc := range []struct{ transport, control, bulk string }{
		{"auto", "transport: quic (HTTP/3)", "bulk: tcp (HTTP/1.1; congestion control"},
		{"quic", "transport: quic (HTTP/3)", "bulk: quic (HTTP/3)"},
		{"tcp", "transport: tcp (HTTP/2)", "bulk: tcp (HTTP/1.1)"},
	} {
		code, _, errOut := lex(t, alice, "-v", "--transport", tc.transport, "send", "--to", gatewaytest.Team, "--matter", "HL-2026-0078", folder)
		if code != 0 || !strings.Contains(errOut, tc.control) || !strings.Contains(errOut, tc.bulk) {
			t.Errorf("--transport %s: exit %d, want stderr with %q and %q:\n%s", tc.transport, code, tc.control, tc.bulk, errOut)
		}
	}
}
