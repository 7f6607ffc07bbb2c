package crashtest

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/internal/crashpoint"
	"github.com/lexgate/lexgate/gateway/store"
)

// crashCases are the steps TestCrashPoints kills the gateway at, with the hit
// to kill at (NAME#N) and whether the transfer is committed (ready) when it dies.
// The upload is 3 chunks of up to 3 MiB; the store copies in 1 MiB blocks, so
// store.upload.mid_chunk#5 is the second MiB of the second chunk.
var crashCases = []struct {
	at        string
	committed bool // the gateway committed the whole upload before dying
	ack       bool // the crash is in the recipient's ack, after a complete upload
	streamed  bool // a streamed upload (hash pending), sealed at the end
	corrupt   bool // the bytes sent differ from the manifest's hash: quarantined
}{
	{at: "transfer.create.committed#1"},                  // the transfer recorded, its creation not logged, no reply
	{at: "transfer.upload.write#1"},                      // before the first chunk
	{at: "store.upload.mid_chunk#2"},                     // in the first chunk, 2 MiB written, nothing synced
	{at: "store.upload.mid_chunk#5"},                     // in the second chunk, after the first was acknowledged
	{at: "store.upload.synced#2"},                        // the second chunk is synced, its offset not committed
	{at: "store.finish.verified#1"},                      // last chunk in, hash matched, before the rename
	{at: "store.finish.published#1"},                     // renamed to .age, metadata still uploading
	{at: "transfer.upload.committed#1", committed: true}, // ready in the store, not in the audit log
	{at: "transfer.upload.audited#1", committed: true},   // logged, the reply never sent
	{at: "transfer.ack.committed#1", committed: true, ack: true},
	{at: "transfer.quarantine.committed#1", committed: true, corrupt: true},
	// A streamed upload: every chunk is stored, the hash is checked at the seal.
	{at: "store.upload.synced#3", streamed: true}, // the last chunk synced, its offset not committed
	{at: "store.finish.published#1", streamed: true},
	{at: "transfer.seal.committed#1", committed: true, streamed: true},
	{at: "transfer.seal.audited#1", committed: true, streamed: true},
}

// TestCrashPoints kills lexgate at each step of an upload and of an ack, and
// checks after a restart on the same data that nothing acknowledged is lost,
// nothing incomplete is visible, the upload resumes, and the audit log agrees
// with the store.
func TestCrashPoints(t *testing.T) { crashPoints(t, newWorld(t, "")) }

// TestCrashPointsCluster is TestCrashPoints on the cluster backends:
// PostgreSQL metadata and the audit log in MariaDB, the ciphertext in the
// spool directory and in an S3 bucket (versitygw).
func TestCrashPointsCluster(t *testing.T) {
	for _, ct := range []string{store.CiphertextSpool, store.CiphertextS3} {
		t.Run(ct, func(t *testing.T) { crashPoints(t, newClusterWorld(t, ct)) })
	}
}

func crashPoints(t *testing.T, w *world) {
	// One world for every case, in turn: each crash meets the store and log the
	// earlier ones left, and every upload acknowledged so far must survive it.
	g := w.start("")
	teamKey := registerTeam(t, w.client(g, team))
	a := w.client(g, alice)
	before := w.create(t, a, ciphertext(t, 1<<20, teamKey.Recipient()), false)
	if err := before.push(context.Background(), a, 0); err != nil {
		t.Fatalf("upload: %v", err)
	}
	g.kill() // at rest, right after an acknowledged upload
	svid := w.aliceSVID(t)
	all := []*upload{before}

	for _, tc := range crashCases {
		name, _, _ := strings.Cut(tc.at, "#")
		if !slices.Contains(crashpoint.Points, name) {
			t.Fatalf("crash point %s is not one the gateway marks", name)
		}
		label := tc.at
		if tc.streamed {
			label = "streamed/" + tc.at
		}
		ok := t.Run(label, func(t *testing.T) {
			w.t = t
			// The crash.
			g := w.start(tc.at)
			a := w.client(g, alice)
			u, err := createAs(a, svid, ciphertext(t, 7<<20+12345, teamKey.Recipient()), tc.streamed)
			if tc.corrupt {
				u.ct[len(u.ct)/2] ^= 1 // after the manifest was signed
			}
			if err == nil {
				err = u.push(context.Background(), a, 0)
			}
			if tc.ack {
				if err != nil {
					t.Fatalf("upload: %v", err)
				}
				err = w.client(g, team).Ack(context.Background(), u.id)
				u.received = true // in the store, whatever the client saw
			}
			if err == nil {
				t.Fatalf("the request went through; the gateway was to crash at %s", tc.at)
			}
			g.waitCrash(name)
			t.Logf("crashed at %s; the client saw: %v; %s", tc.at, err, u)

			// The restart: the invariant, then the resumed upload.
			g = w.start("")
			tm, a := w.client(g, team), w.client(g, alice)
			visible := tc.committed && !tc.ack && !tc.corrupt
			if _, ok := inbox(t, tm)[u.id]; ok != visible {
				t.Errorf("after a crash at %s the transfer is in the inbox: %v, want %v", tc.at, ok, visible)
			}
			ups := all
			if !tc.corrupt { // quarantined: never in an inbox
				ups = append(ups, u)
			}
			checkInbox(t, tm, ups, func(x *upload) bool { return x == u && tc.committed })
			if tc.committed && !strings.Contains(g.out.String(), "reconciler logged") && !strings.HasSuffix(name, ".audited") {
				t.Errorf("the reconciler logged nothing after a crash at %s", tc.at)
			}
			if tc.corrupt {
				if err := u.push(context.Background(), a, int64(len(u.ct))); !isCode(err, api.CodeHashMismatch) {
					t.Errorf("retrying the quarantined upload: %v, want %s", err, api.CodeHashMismatch)
				}
			} else if !tc.ack {
				if u.id == "" { // the create's reply was lost: the same manifest finds the transfer
					if err := u.create(a); err != nil {
						t.Fatalf("create again after the crash: %v", err)
					}
				}
				u.resume(t, a)
				checkInbox(t, tm, ups, func(*upload) bool { return false })
			}
			ackAll(t, tm, ups)
			all = ups
			g.stop()
			w.checkAgreement(t)
		})
		if !ok {
			break // the next cases would start from a state this one left broken
		}
	}
}

// TestRandomKills kills lexgate from outside at random moments while three
// uploads run, restarts it, checks the invariant, resumes them, and goes
// again: on the embedded default, and on the cluster backends (PostgreSQL,
// the ciphertext in versitygw, the audit log in MariaDB), where the bucket
// itself is checked after every kill as well. LEXGATE_CRASH_SEED repeats a
// run (both subtests draw from it); LEXGATE_CRASH_ITERATIONS sets the kills.
func TestRandomKills(t *testing.T) {
	iterations := 3
	if v := os.Getenv("LEXGATE_CRASH_ITERATIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LEXGATE_CRASH_ITERATIONS=%q: want a positive number", v)
		}
		iterations = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("LEXGATE_CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("LEXGATE_CRASH_SEED=%q: %v", v, err)
		}
	}
	// checkInbox downloads every transfer whole after each kill, more often
	// than the shipped download limit (5) allows: raise the recipient
	// organisation's limit so the check reads the invariant, not the policy.
	edit := func(c *gateway.Config) {
		c.Policy.Dir = gatewaytest.PolicyDir(t, func(file string, doc map[string]any) {
			if file == "organisations.json" {
				orgs := doc["organisations"].(map[string]any)
				orgs["manila-lpo.example"].(map[string]any)["max_downloads"] = 1000
			}
		})
	}
	for _, tc := range []struct {
		name  string
		world func(t *testing.T) *world
	}{
		{"embedded", func(t *testing.T) *world { return newWorldWith(t, "", edit) }},
		{"cluster-s3", func(t *testing.T) *world { return newClusterWorldWith(t, store.CiphertextS3, edit) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("seed %d (LEXGATE_CRASH_SEED=%d to repeat), %d kills", seed, seed, iterations)
			randomKills(t, tc.world(t), rand.New(rand.NewPCG(seed, 0)), iterations)
		})
	}
}

func randomKills(t *testing.T, w *world, rng *rand.Rand, iterations int) {
	g := w.start("")
	teamKey := registerTeam(t, w.client(g, team))
	newBatch := func(a *cli.Client) []*upload {
		var batch []*upload
		for range 3 {
			batch = append(batch, w.create(t, a, ciphertext(t, 4<<20+rng.IntN(4<<20), teamKey.Recipient()), rng.IntN(2) == 0))
		}
		return batch
	}
	pushAll := func(a *cli.Client, batch []*upload) *sync.WaitGroup {
		var wg sync.WaitGroup
		for _, u := range batch {
			wg.Go(func() { u.push(context.Background(), a, 0) })
		}
		return &wg
	}

	// How long a batch takes on this machine, uninterrupted: kills land
	// anywhere in that span (and a little after), however busy the machine is.
	a := w.client(g, alice)
	all := newBatch(a)
	start := time.Now()
	pushAll(a, all).Wait()
	span := time.Since(start)
	for _, u := range all {
		if !u.done {
			t.Fatalf("calibration upload %s did not complete", u)
		}
	}
	for i := range iterations {
		a := w.client(g, alice)
		batch := newBatch(a)
		all = append(all, batch...)
		wg := pushAll(a, batch)
		delay := time.Duration(rng.Float64() * 1.2 * float64(span))
		time.Sleep(delay)
		g.kill()
		wg.Wait()
		var states []string
		for _, u := range batch {
			states = append(states, u.String())
		}
		t.Logf("kill %d after %v of %v: %s", i+1, delay.Round(time.Millisecond), span.Round(time.Millisecond), strings.Join(states, "; "))
		// The bucket as the kill left it: whole objects only.
		w.checkObjects(t, all)

		g = w.start("")
		tm, a := w.client(g, team), w.client(g, alice)
		// A complete upload whose reply the kill cut may be ready (checked
		// byte for byte); one whose last request was never sent may not.
		checkInbox(t, tm, all, func(u *upload) bool { return u.sentLast })
		for _, u := range batch {
			u.resume(t, a)
		}
		checkInbox(t, tm, all, func(*upload) bool { return false })
	}
	ackAll(t, w.client(g, team), all)
	g.stop()
	w.checkAgreement(t)
}
