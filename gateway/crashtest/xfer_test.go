package crashtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/store"
)

// chunk is the upload chunk size: several of the store's 1 MiB copy buffers, so
// that a chunk can be caught half written.
const chunk = 3 << 20

// ciphertext age-encrypts size random bytes to recipient.
func ciphertext(t testing.TB, size int, recipient age.Recipient) []byte {
	t.Helper()
	pt := make([]byte, size)
	rand.Read(pt)
	var b bytes.Buffer
	w, err := age.Encrypt(&b, recipient)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pt)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// registerTeam registers a fresh age key for the review team and returns it.
func registerTeam(t testing.TB, c *cli.Client) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.RegisterKeys(ctx, []string{id.Recipient().String()}); err != nil {
		t.Fatalf("register team key: %v", err)
	}
	return id
}

// upload is one transfer from alice to the team, as the client knows it.
type upload struct {
	id    string
	ct    []byte
	sm    *api.SignedManifest // the manifest the transfer was created from
	final *api.SignedManifest // the sealing manifest of a streamed transfer, nil otherwise
	acked int64               // the highest offset the gateway acknowledged (a 2xx reply)
	done  bool                // the gateway acknowledged the last byte: the sender's upload is complete
	// sentLast: the request that completes the upload (the last chunk, or the
	// seal of a streamed one) was sent, so it may be ready without a reply.
	sentLast bool
	// received: the team acknowledged it, so it has left the inbox for good.
	received bool
}

func (u *upload) String() string {
	return fmt.Sprintf("%s (%d/%d bytes acknowledged, done=%v)", u.id, u.acked, len(u.ct), u.done)
}

// create signs a manifest for ct as alice and creates the transfer, streamed
// (hash pending, sealed at the end) or not.
func (w *world) create(t testing.TB, c *cli.Client, ct []byte, streamed bool) *upload {
	t.Helper()
	u, err := createAs(c, w.aliceSVID(t), ct, streamed)
	if err != nil {
		t.Fatalf("create transfer: %v", err)
	}
	return u
}

// aliceSVID is alice's dev SVID, which signs the manifests of the uploads.
func (w *world) aliceSVID(t testing.TB) *x509svid.SVID {
	t.Helper()
	cert, key := w.svidFiles(alice)
	svid, err := certs.LoadSVID(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return svid
}

// createAs creates a transfer of ct as svid. A streamed one is created with its
// hash pending, to be sealed once every byte is up, as lex's pipelined send does.
func createAs(c *cli.Client, svid *x509svid.SVID, ct []byte, streamed bool) (*upload, error) {
	sum := sha256.Sum256(ct)
	m := api.Manifest{Sender: alice, Recipients: []string{team}, Matter: "HL-2026-0042",
		Labels: []string{"privileged"}, FileCount: 1, PlaintextSize: int64(len(ct)), CiphertextSize: int64(len(ct)),
		CiphertextSHA256: hex.EncodeToString(sum[:])}
	if streamed {
		m.CiphertextSHA256 = ""
	}
	sm, err := api.Sign(m, svid.PrivateKey, svid.Certificates)
	if err != nil {
		return nil, err
	}
	var final *api.SignedManifest
	if streamed {
		intent, err := sm.Decode()
		if err != nil {
			return nil, err
		}
		intent.CiphertextSHA256 = hex.EncodeToString(sum[:])
		if final, err = api.Sign(intent, svid.PrivateKey, svid.Certificates); err != nil {
			return nil, err
		}
	}
	u := &upload{sm: sm, ct: ct, final: final}
	return u, u.create(c)
}

// create submits the upload's signed manifest: the first time it creates the
// transfer, again it finds the same one.
func (u *upload) create(c *cli.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := c.CreateTransfer(ctx, u.sm)
	if err != nil {
		return err
	}
	if u.id != "" && tr.ID != u.id {
		return fmt.Errorf("creating %s again gave transfer %s", u.id, tr.ID)
	}
	u.id = tr.ID
	return nil
}

// push uploads from off to the end in chunks, recording every acknowledgement,
// and seals a streamed transfer. A 409 moves it to the offset the gateway holds.
// It stops at the first other error.
func (u *upload) push(ctx context.Context, c *cli.Client, off int64) error {
	size := int64(len(u.ct))
	for {
		n := min(chunk, size-off)
		if off+n == size && u.final == nil {
			u.sentLast = true
		}
		next, err := c.UploadChunk(ctx, u.id, off, bytes.NewReader(u.ct[off:off+n]), n)
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeConflict {
			off = ae.Offset
			continue
		}
		if err != nil {
			return err
		}
		u.acked = max(u.acked, next)
		off = next
		if next < size {
			continue
		}
		if u.final != nil {
			u.sentLast = true
			_, err := c.SealTransfer(ctx, u.id, u.final)
			if errors.As(err, &ae) && ae.Code == api.CodeConflict {
				off = ae.Offset
				continue
			}
			if err != nil {
				return err
			}
		}
		u.done = true
		return nil
	}
}

// resume continues the upload from the gateway's durable offset, which must not
// be below what the gateway had acknowledged.
func (u *upload) resume(t testing.TB, c *cli.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	off, err := c.UploadOffset(ctx, u.id)
	if err != nil {
		t.Fatalf("upload offset of %s: %v", u, err)
	}
	if off < u.acked {
		t.Errorf("transfer %s: the gateway holds %d bytes after the restart, but had acknowledged %d", u.id, off, u.acked)
	}
	if err := u.push(ctx, c, off); err != nil {
		t.Fatalf("resume %s from %d: %v", u, off, err)
	}
}

// inbox lists the team's inbox.
func inbox(t testing.TB, c *cli.Client) map[string]api.Transfer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ir, err := c.Inbox(ctx)
	if err != nil {
		t.Fatalf("inbox: %v", err)
	}
	m := map[string]api.Transfer{}
	for _, tr := range ir.Transfers {
		m[tr.ID] = tr
	}
	return m
}

// deliverable checks that the team can download u byte for byte.
func deliverable(t testing.TB, c *cli.Client, u *upload) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	body, _, err := c.Download(ctx, u.id, 0)
	if err != nil {
		t.Errorf("download %s: %v", u, err)
		return
	}
	defer body.Close()
	got, err := io.ReadAll(body)
	if err != nil {
		t.Errorf("download %s: %v", u, err)
		return
	}
	if !bytes.Equal(got, u.ct) {
		t.Errorf("download %s: %d bytes that differ from the %d uploaded", u.id, len(got), len(u.ct))
	}
}

// checkInbox checks the invariant on the team's inbox: every upload the gateway
// acknowledged completely is there, and everything there is complete, one of
// ours, and byte-exact. An upload whose last byte the gateway committed before
// the crash may be there although its reply was lost: mayBeReady says which.
func checkInbox(t testing.TB, c *cli.Client, ups []*upload, mayBeReady func(*upload) bool) {
	t.Helper()
	in := inbox(t, c)
	byID := map[string]*upload{}
	for _, u := range ups {
		byID[u.id] = u
	}
	for id, tr := range in {
		u, ok := byID[id]
		if !ok {
			t.Errorf("inbox holds transfer %s that no test sent", id)
			continue
		}
		if u.received {
			t.Errorf("inbox holds %s, which the team acknowledged", u)
		}
		if !u.done && !mayBeReady(u) {
			t.Errorf("inbox holds %s, whose upload was never acknowledged complete (state %s, offset %d)", u, tr.State, tr.Offset)
		}
		if tr.Offset != int64(len(u.ct)) {
			t.Errorf("inbox holds %s at offset %d of %d", u.id, tr.Offset, len(u.ct))
		}
		deliverable(t, c, u)
	}
	for _, u := range ups {
		if _, ok := in[u.id]; u.done && !u.received && !ok {
			t.Errorf("acknowledged upload %s is not in the inbox after the restart", u)
		}
	}
}

// ackAll acknowledges, as the team, every upload not yet received.
func ackAll(t testing.TB, c *cli.Client, ups []*upload) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, u := range ups {
		if u.received {
			continue
		}
		if err := c.Ack(ctx, u.id); err != nil {
			t.Errorf("ack %s: %v", u.id, err)
		}
		u.received = true
	}
}

// checkAgreement opens the stopped gateway's store and audit log and checks that
// they agree: every ready transfer has its upload completion logged, every
// recorded ack its ack entry, every quarantined transfer its quarantine entry;
// every such entry names a transfer the store has in that state; nothing is
// uploading with its last byte stored and its hash known. On S3 the bucket
// agrees too (checkStoreObjects), read before the store's Open tidies it.
func (w *world) checkAgreement(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	objs := w.bucketObjects(t)
	scfg := store.Config{Dir: w.data}
	if w.storeCfg != nil {
		scfg = *w.storeCfg
	}
	st, err := store.Open(ctx, scfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()
	if objs != nil {
		checkStoreObjects(t, st, objs)
	}
	log, err := audit.Open(ctx, audit.Config{Dir: w.auditDir, KeyFile: w.auditKey,
		Origin: "harbor-law.example/lexgate-audit", MySQL: audit.MySQLConfig{DSN: w.auditMySQL}})
	if err != nil {
		t.Fatalf("open audit log: %v", err)
	}
	defer log.Close()
	logged := map[string]bool{}
	once := map[string]int{} // creations, upload completions and quarantines: logged exactly once
	cp, err := log.Reader().ReadCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(cp), "\n", 3)
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("checkpoint size %q: %v", lines[1], err)
	}
	if w.auditMySQL != "" {
		// A shared log's checkpoint comes at most once a second: read every
		// integrated entry, the durable ones.
		if size, err = log.Reader().(interface {
			IntegratedSize(context.Context) (uint64, error)
		}).IntegratedSize(ctx); err != nil {
			t.Fatal(err)
		}
	}
	err = audit.Walk(ctx, log.Reader(), size, func(i uint64, entry []byte) error {
		ev, err := log.Event(ctx, i)
		if err != nil {
			return err
		}
		switch ev.Kind {
		case audit.KindTransferCreated:
			logged[audit.LookupCreated(ev.Transfer)] = true
			once[audit.LookupCreated(ev.Transfer)]++
		case audit.KindUploadComplete:
			logged[audit.LookupUpload(ev.Transfer)] = true
			once[audit.LookupUpload(ev.Transfer)]++
		case audit.KindAck:
			logged[audit.LookupAck(ev.Transfer, ev.Actor)] = true
		case audit.KindQuarantined:
			logged[audit.LookupQuarantine(ev.Transfer)] = true
			once[audit.LookupQuarantine(ev.Transfer)]++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk audit log: %v", err)
	}
	want := map[string]bool{}
	for _, state := range []store.State{store.StateReady, store.StateUploading, store.StateQuarantined} {
		ts, err := st.TransfersIn(ctx, state, "", 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range ts {
			want[audit.LookupCreated(tr.ID)] = true
			if state == store.StateQuarantined {
				want[audit.LookupQuarantine(tr.ID)] = true
			}
			if state != store.StateReady {
				if state == store.StateUploading && tr.CiphertextSHA256 != "" && tr.Offset == tr.CiphertextSize && tr.CiphertextSize > 0 {
					t.Errorf("transfer %s is uploading with all %d bytes stored", tr.ID, tr.Offset)
				}
				continue
			}
			want[audit.LookupUpload(tr.ID)] = true
			for r := range tr.Acked {
				want[audit.LookupAck(tr.ID, r)] = true
			}
		}
	}
	for k := range want {
		if !logged[k] {
			t.Errorf("the store has %q, the audit log does not", k)
		}
	}
	for k := range logged {
		if !want[k] {
			t.Errorf("the audit log has %q, the store does not", k)
		}
	}
	for k, n := range once {
		if n != 1 {
			t.Errorf("the audit log has %q %d times", k, n)
		}
	}
}
