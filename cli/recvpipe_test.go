package cli_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestGatewayReceiveFileMismatchMidBundle: a sender with a valid SVID signs a
// large bundle in which one file in the middle differs from its SHA-256 in the
// bundle's manifest. The pipelined receive has already staged the files before
// it (and decrypts those after it, taking checkpoints) when the check fails:
// nothing reaches the destination, and no staging directory or checkpoint is
// left.
func TestGatewayReceiveFileMismatchMidBundle(t *testing.T) {
	defer cli.SetCheckpointEvery(8, 4)()
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
	if ents, _ := os.ReadDir(filepath.Join(filepath.Dir(team), "cache", "incoming")); len(ents) > 0 {
		t.Errorf("the cache holds %v after a refused receive", ents)
	}
}

// checkpointOffset is the ciphertext offset a resume from the checkpoint at
// path starts at.
func checkpointOffset(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ck struct {
		Header []byte
		Chunk  int64
	}
	if err := json.Unmarshal(data, &ck); err != nil {
		t.Fatal(err)
	}
	return int64(len(ck.Header)) + ck.Chunk*(64<<10+16)
}

// TestGatewayPipelinedReceiveCut cuts the download at a random offset of a
// single-stream, pipelined receive. A blip (the link comes back at once) is
// ridden out within the same command, from the byte the pipeline has
// consumed. A lasting cut fails the command, leaves nothing in the
// destination but the staging directory and a checkpoint beside the cache,
// and the same command run again resumes from the checkpoint, downloading
// only the rest of the ciphertext and its last chunk. Either way the files
// come out identical.
func TestGatewayPipelinedReceiveCut(t *testing.T) {
	defer cli.SetCheckpointEvery(8, 4)()
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 12<<20)
	id := sendID(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2026-0042", root)
	ciphertext, err := os.ReadFile(env.SpoolFiles()[0])
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(ciphertext))
	ckPath := filepath.Join(filepath.Dir(team), "cache", "incoming", id+".resume")
	for _, blip := range []bool{true, false} {
		name := "lasting cut"
		if blip {
			name = "blip"
		}
		t.Run(name, func(t *testing.T) {
			seed := time.Now().UnixNano()
			cutAt := int64(3<<20) + mrand.New(mrand.NewPCG(uint64(seed), 0)).Int64N(size-4<<20)
			t.Logf("cutting the download after %d bytes (seed %d)", cutAt, seed)
			proxy := startDownCut(t, env.Addr, cutAt)
			proxy.healOnCut.Store(blip)
			config := viaProxy(t, team, env.Addr, proxy.addr())
			dest := filepath.Join(t.TempDir(), "in")
			args := []string{"-v", "receive", id, "-o", dest}
			if blip {
				code, _, errOut := lex(t, config, args...)
				if code != 0 || strings.Count(errOut, "download: one stream") != 1 {
					t.Fatalf("receive through a blip: exit %d, want one download in stderr:\n%s", code, errOut)
				}
				if served := proxy.sent.Load(); served > size+256<<10 {
					t.Errorf("the gateway served %d bytes for a %d-byte ciphertext cut once", served, size)
				}
			} else {
				// A short --reconnect: the cut lasts, so lex gives up after it
				// rather than after the default minute of retries.
				if code, _, errOut := lex(t, config, append([]string{"--reconnect", "2s"}, args...)...); code != cli.ExitError {
					t.Fatalf("receive over a cut link: exit %d, want %d\n%s", code, cli.ExitError, errOut)
				}
				assertOnlyStaging(t, dest)
				off := checkpointOffset(t, ckPath)
				if off <= 0 || off > cutAt {
					t.Fatalf("checkpoint at byte %d, after a cut at %d", off, cutAt)
				}
				proxy.heal()
				before := proxy.sent.Load()
				code, _, errOut := lex(t, config, args...)
				if want := fmt.Sprintf("from byte %d of", off); code != 0 || !strings.Contains(errOut, want) {
					t.Fatalf("second receive: exit %d, want stderr with %q:\n%s", code, want, errOut)
				}
				// The rest, the last chunk (64 KiB) and the requests around them.
				if served, most := proxy.sent.Load()-before, size-off+256<<10; served > most {
					t.Errorf("the resumed receive got %d bytes from the gateway, want at most %d (the %d bytes after the checkpoint and overhead)", served, most, size-off)
				}
			}
			checkTree(t, filepath.Join(dest, "HL-2026-0042"), sums)
			if ents, _ := os.ReadDir(dest); len(ents) != 1 {
				t.Errorf("the destination holds %v, want HL-2026-0042 alone", ents)
			}
			if _, err := os.Stat(ckPath); !os.IsNotExist(err) {
				t.Errorf("the checkpoint is still there after a receive (%v)", err)
			}
		})
	}
}

// assertOnlyStaging checks that dest holds nothing but lex's staging
// directory.
func assertOnlyStaging(t *testing.T, dest string) {
	t.Helper()
	ents, _ := os.ReadDir(dest)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), ".lex-staging-") {
		t.Fatalf("after a cut receive the destination holds %v, want a staging directory alone", ents)
	}
}

// cancelAfterCheckpoint runs lex receive of id into dest with config and
// cancels it (as Ctrl-C does) once it has written its first checkpoint. The
// proxy config goes through cuts the download half-way, so that the receive
// cannot end before it is cancelled; it is healed on return.
func cancelAfterCheckpoint(t *testing.T, proxy *cutProxy, config, id, dest string) {
	t.Helper()
	defer proxy.heal()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var once sync.Once
	defer cli.OnCheckpoint(func(string) { once.Do(cancel) })()
	var stdout, stderr bytes.Buffer
	if code := cli.Main(ctx, []string{"--config", config, "receive", id, "-o", dest}, nil, &stdout, &stderr); code == 0 {
		t.Fatalf("the receive ended before it was cancelled:\n%s", stderr.String())
	}
	t.Logf("cancelled receive: %s", stderr.String())
	assertOnlyStaging(t, dest)
}

// TestGatewayReceiveResumeAfterCancel cancels a receive after its first
// checkpoint: the next run resumes from it, gets only the rest from the
// gateway (counted by a proxy in front of it) and delivers identical files;
// a checkpoint that cannot be trusted is not resumed from: the receive
// starts over, or fails closed when the ciphertext's hash no longer matches.
func TestGatewayReceiveResumeAfterCancel(t *testing.T) {
	defer cli.SetCheckpointEvery(8, 4)()
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 16<<20)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, ckPath string)
		fails  string // the resumed run's error, if it fails
	}{
		{name: "resumed"},
		{name: "garbage checkpoint", damage: func(t *testing.T, ckPath string) { write(t, ckPath, []byte("{not json")) }},
		{name: "staged file changed", damage: func(t *testing.T, ckPath string) {
			var ck struct{ Staging string }
			data, _ := os.ReadFile(ckPath)
			json.Unmarshal(data, &ck)
			p := filepath.Join(ck.Staging, "HL-2026-0042", "README.txt")
			if err := os.WriteFile(p, []byte("changed\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "hash state changed", fails: "does not match the signed manifest", damage: func(t *testing.T, ckPath string) {
			var ck map[string]any
			data, _ := os.ReadFile(ckPath)
			json.Unmarshal(data, &ck)
			state, _ := base64.StdEncoding.DecodeString(ck["hash_state"].(string))
			state[10] ^= 1 // in the hash's running state, after its magic
			ck["hash_state"] = state
			data, _ = json.Marshal(ck)
			write(t, ckPath, data)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := sendID(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2026-0042", root)
			size := spoolSize(t, env, id)
			ckPath := filepath.Join(filepath.Dir(team), "cache", "incoming", id+".resume")
			proxy := startDownCut(t, env.Addr, size/2)
			config := viaProxy(t, team, env.Addr, proxy.addr())
			dest := filepath.Join(t.TempDir(), "in")
			cancelAfterCheckpoint(t, proxy, config, id, dest)
			off := checkpointOffset(t, ckPath)
			if tc.damage != nil {
				tc.damage(t, ckPath)
			}
			before := proxy.sent.Load()
			code, _, errOut := lex(t, config, "-v", "receive", id, "-o", dest)
			served := proxy.sent.Load() - before
			switch {
			case tc.fails != "":
				if code != cli.ExitError || !strings.Contains(errOut, tc.fails) {
					t.Fatalf("resumed receive: exit %d, want %d with %q:\n%s", code, cli.ExitError, tc.fails, errOut)
				}
				assertNothingDelivered(t, dest)
				// Nothing is left to resume from: the next run starts over.
				code, _, errOut = lex(t, config, "-v", "receive", id, "-o", dest)
				if code != 0 || !strings.Contains(errOut, fmt.Sprintf("from byte 0 of %d", size)) {
					t.Fatalf("receive after a refused resume: exit %d\n%s", code, errOut)
				}
			case tc.damage != nil:
				if code != 0 || !strings.Contains(errOut, "not resuming from the checkpoint") || !strings.Contains(errOut, fmt.Sprintf("from byte 0 of %d", size)) {
					t.Fatalf("receive from a damaged checkpoint: exit %d, want a start from byte 0:\n%s", code, errOut)
				}
			default:
				checkResumed(t, "resumed receive", code, errOut, off, size, served)
			}
			checkTree(t, filepath.Join(dest, "HL-2026-0042"), sums)
			if ents, _ := os.ReadDir(dest); len(ents) != 1 {
				t.Errorf("the destination holds %v, want HL-2026-0042 alone", ents)
			}
			if _, err := os.Stat(ckPath); !os.IsNotExist(err) {
				t.Errorf("the checkpoint is still there after a receive (%v)", err)
			}
		})
	}
}

// spoolSize is the size of transfer id's ciphertext in the gateway's spool.
func spoolSize(t *testing.T, env *gatewaytest.Env, id string) int64 {
	t.Helper()
	for _, p := range env.SpoolFiles() {
		if strings.Contains(p, id) {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			return fi.Size()
		}
	}
	t.Fatalf("no spool file for %s in %v", id, env.SpoolFiles())
	return 0
}

// checkResumed checks a receive (what) that should have resumed from the
// checkpoint at byte off of size: it succeeded, said so on stderr, and got
// from the gateway (served bytes) no more than what follows the checkpoint
// and 256 KiB of overhead.
func checkResumed(t *testing.T, what string, code int, errOut string, off, size, served int64) {
	t.Helper()
	if want := fmt.Sprintf("from byte %d of %d", off, size); code != 0 || !strings.Contains(errOut, want) {
		t.Fatalf("%s: exit %d, want stderr with %q:\n%s", what, code, want, errOut)
	}
	if most := size - off + 256<<10; served > most {
		t.Errorf("%s got %d bytes from the gateway, want at most %d (the %d bytes after the checkpoint and overhead)", what, served, most, size-off)
	}
	t.Logf("%s: from byte %d of %d, %d bytes from the gateway", what, off, size, served)
}
