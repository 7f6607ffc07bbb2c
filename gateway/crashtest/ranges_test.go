package crashtest

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/internal/crashpoint"
	"github.com/lexgate/lexgate/gateway/store"
)

// sendRange uploads u.ct[sp.Start:sp.End] as one range of a parallel upload.
func (u *upload) sendRange(ctx context.Context, c *cli.Client, sp api.Span) (int64, []api.Span, error) {
	return c.UploadRange(ctx, u.id, sp.Start, sp.End, bytes.NewReader(u.ct[sp.Start:sp.End]))
}

// TestCrashRanges kills lexgate while it writes one range of a parallel upload
// (after the pwrite, and after the fsync but before the range is recorded),
// with other ranges acknowledged before it, one of them beyond the contiguous
// prefix. After the restart every acknowledged range is held, the one that was
// not acknowledged is missing, and re-sending only the missing bytes completes
// the upload, which is then deliverable byte for byte.
func TestCrashRanges(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { crashRanges(t, newWorld(t, "")) })
	// On S3 (5 MiB parts): the range [5 MiB, end) is the last part, sent
	// whole; the others are pieces, assembled into the first part when the
	// missing range is re-sent.
	t.Run("cluster-s3", func(t *testing.T) { crashRanges(t, newClusterWorld(t, store.CiphertextS3)) })
}

func crashRanges(t *testing.T, w *world) {
	const mib = 1 << 20
	for _, at := range []string{"store.range.written#4", "store.range.synced#4"} {
		name, _, _ := strings.Cut(at, "#")
		if !slices.Contains(crashpoint.Points, name) {
			t.Fatalf("crash point %s is not one the gateway marks", name)
		}
		t.Run(at, func(t *testing.T) {
			w.t = t
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			g := w.start(at)
			teamKey := registerTeam(t, w.client(g, team))
			a := w.client(g, alice)
			u := w.create(t, a, ciphertext(t, 7*mib+12345, teamKey.Recipient()), false)
			size := int64(len(u.ct))
			for _, sp := range []api.Span{{Start: 0, End: mib}, {Start: 5 * mib, End: size}, {Start: mib, End: 3 * mib}} {
				if _, _, err := u.sendRange(ctx, a, sp); err != nil {
					t.Fatalf("range %v: %v", sp, err)
				}
			}
			if _, _, err := u.sendRange(ctx, a, api.Span{Start: 3 * mib, End: 5 * mib}); err == nil {
				t.Fatalf("the last range went through; the gateway was to crash at %s", at)
			}
			g.waitCrash(name)

			g = w.start("")
			a, tm := w.client(g, alice), w.client(g, team)
			off, held, err := a.UploadProgress(ctx, u.id)
			if err != nil {
				t.Fatalf("upload progress after the restart: %v", err)
			}
			if want := []api.Span{{Start: 5 * mib, End: size}}; off != 3*mib || !reflect.DeepEqual(held, want) {
				t.Fatalf("after a crash at %s the gateway holds [0, %d) and %v; want [0, %d) and %v", at, off, held, 3*mib, want)
			}
			if _, ok := inbox(t, tm)[u.id]; ok {
				t.Fatalf("the incomplete upload is in the inbox")
			}
			got, _, err := u.sendRange(ctx, a, api.Span{Start: off, End: held[0].Start})
			if err != nil || got != size {
				t.Fatalf("re-sending the missing range: offset %d, %v; want %d", got, err, size)
			}
			u.acked, u.done = size, true
			checkInbox(t, tm, []*upload{u}, func(*upload) bool { return false })
			ackAll(t, tm, []*upload{u})
			g.stop()
			w.checkAgreement(t)
		})
	}
}
