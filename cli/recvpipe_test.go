package cli_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestGatewayReceiveFileMismatchMidBundle: a sender with a valid SVID signs a
// large bundle in which one file in the middle differs from its SHA-256 in the
// bundle's manifest. The pipelined receive has already staged the files before
// it (and decrypts those after it) when the check fails: nothing reaches the
// destination, no staging directory is left and the cache is emptied.
func TestGatewayReceiveFileMismatchMidBundle(t *testing.T) {
	env, _, team := setup(t, gatewaytest.WithoutQUIC())
	alice := newRawClient(t, env, gatewaytest.Alice)
	const files, fileSize = 40, 256 << 10
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var listed []cli.BundleFile
	for i := range files {
		data := make([]byte, fileSize)
		rand.Read(data)
		name := fmt.Sprintf("productions/vol-%03d.bin", i)
		sum := sha256.Sum256(data)
		if i == files/2 {
			data[fileSize/2] ^= 0x01 // the file differs from what the manifest lists
		}
		listed = append(listed, cli.BundleFile{Path: name, Size: fileSize, SHA256: hex.EncodeToString(sum[:])})
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: fileSize, ModTime: time.Unix(0, 0)})
		tw.Write(data)
	}
	m, _ := json.Marshal(cli.BundleManifest{Version: 1, Files: listed})
	tw.WriteHeader(&tar.Header{Name: cli.BundleManifestName, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(m)), ModTime: time.Unix(0, 0)})
	tw.Write(m)
	tw.Close()
	id := alice.sendRaw(gatewaytest.Team, buf.Bytes(), files)

	parent := t.TempDir()
	dest := filepath.Join(parent, "in")
	code, _, errOut := lex(t, team, "receive", id, "-o", dest)
	want := fmt.Sprintf("productions/vol-%03d.bin\" does not match its SHA-256", files/2)
	if code != cli.ExitError || !strings.Contains(errOut, want) {
		t.Fatalf("exit %d, want %d with %q; stderr %q", code, cli.ExitError, want, errOut)
	}
	assertNothingDelivered(t, dest)
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("receive left %v beside the destination", ents)
	}
	cache := filepath.Join(filepath.Dir(team), "cache", "incoming", id+".age")
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("the cache still holds the refused ciphertext (%v)", err)
	}
}

// TestGatewayPipelinedReceiveCut cuts the download at a random offset of a
// single-stream, pipelined receive. A blip (the link comes back at once) is
// ridden out within the same command; a lasting cut fails the command, leaves
// a whole prefix of the ciphertext in the cache and nothing in the destination,
// and the same command run again resumes from that prefix. Either way the
// files come out identical.
func TestGatewayPipelinedReceiveCut(t *testing.T) {
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 12<<20)
	id := sendID(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2026-0042", root)
	ciphertext, err := os.ReadFile(env.SpoolFiles()[0])
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(filepath.Dir(team), "cache", "incoming", id+".age")
	for _, blip := range []bool{true, false} {
		name := "lasting cut"
		if blip {
			name = "blip"
		}
		t.Run(name, func(t *testing.T) {
			os.Remove(cache)
			seed := time.Now().UnixNano()
			cutAt := int64(1<<20) + mrand.New(mrand.NewPCG(uint64(seed), 0)).Int64N(int64(len(ciphertext))-2<<20)
			t.Logf("cutting the download after %d bytes (seed %d)", cutAt, seed)
			proxy := startDownCut(t, env.Addr, cutAt)
			proxy.healOnCut.Store(blip)
			cfg, _ := os.ReadFile(team)
			viaProxy := filepath.Join(t.TempDir(), "via-proxy.yaml")
			write(t, viaProxy, bytes.Replace(cfg, []byte("gateway: "+env.Addr), []byte("gateway: "+proxy.addr()), 1))
			dest := filepath.Join(t.TempDir(), "in")
			args := []string{"-v", "receive", id, "-o", dest}
			if !blip {
				// A short --reconnect: the cut lasts, so lex gives up after it
				// rather than after the default minute of retries.
				if code, _, errOut := lex(t, viaProxy, append([]string{"--reconnect", "2s"}, args...)...); code != cli.ExitError {
					t.Fatalf("receive over a cut link: exit %d, want %d\n%s", code, cli.ExitError, errOut)
				}
				assertNothingDelivered(t, dest)
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
				if want := fmt.Sprintf("from byte %d of", len(partial)); code != 0 || !strings.Contains(errOut, want) {
					t.Fatalf("second receive: exit %d, want stderr with %q:\n%s", code, want, errOut)
				}
			} else {
				code, _, errOut := lex(t, viaProxy, args...)
				if code != 0 || strings.Count(errOut, "download: one stream") != 1 {
					t.Fatalf("receive through a blip: exit %d, want one download in stderr:\n%s", code, errOut)
				}
			}
			checkTree(t, filepath.Join(dest, "HL-2026-0042"), sums)
			if _, err := os.Stat(cache); !os.IsNotExist(err) {
				t.Errorf("the cache still holds the ciphertext after a receive (%v)", err)
			}
		})
	}
}

// TestGatewayReceiveCorruptCache: the cache of a cut receive is corrupted on
// disk (one bit flipped in the prefix a resume starts from). The pipeline
// decrypts that prefix first and age refuses the damaged chunk, but the whole
// ciphertext is still hashed: lex reports that it does not match the signed
// manifest, delivers nothing and drops the cache, and the next receive
// downloads it afresh and succeeds.
func TestGatewayReceiveCorruptCache(t *testing.T) {
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 6<<20)
	id := sendID(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2026-0042", root)
	ciphertext, err := os.ReadFile(env.SpoolFiles()[0])
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(filepath.Dir(team), "cache", "incoming", id+".age")
	prefix := append([]byte(nil), ciphertext[:2<<20]...)
	prefix[1<<20] ^= 0x10
	write(t, cache, prefix)

	dest := filepath.Join(t.TempDir(), "in")
	code, _, errOut := lex(t, team, "-v", "receive", id, "-o", dest)
	if code != cli.ExitError || !strings.Contains(errOut, "does not match the signed manifest") || !strings.Contains(errOut, "from byte 2097152 of") {
		t.Fatalf("receive from a corrupt cache: exit %d, want %d, a resume from byte 2097152 and a mismatch; stderr:\n%s", code, cli.ExitError, errOut)
	}
	assertNothingDelivered(t, dest)
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("the corrupt cache is still there (%v)", err)
	}
	mustLex(t, team, "receive", id, "-o", dest)
	checkTree(t, filepath.Join(dest, "HL-2026-0042"), sums)
}
