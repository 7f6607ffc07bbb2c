package battery_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	_ "modernc.org/sqlite"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// sent is a transfer alice sent to the team, fully uploaded.
type sent struct {
	id string
	ct []byte
}

func sendToTeam(t *testing.T, env *gatewaytest.Env, alice, team *gatewaytest.Client) sent {
	t.Helper()
	key := team.Register()
	ct := gatewaytest.Encrypt(t, bytes.Repeat([]byte("exhibit "), 4096), key.Recipient())
	st, xfer, e := alice.Create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	if st, b, _ := alice.Upload(xfer.ID, 0, ct); st != http.StatusNoContent {
		t.Fatalf("upload: %d %s", st, b)
	}
	return sent{xfer.ID, ct}
}

func deliveries(env *gatewaytest.Env, id string) (n int) {
	for _, ev := range env.AuditEvents() {
		if ev.Kind == audit.KindDelivery && ev.Transfer == id {
			n++
		}
	}
	return n
}

// TestAuthZUploadOnlyBySender: there are no upload tokens; an upload is
// authorised by the caller's SVID being the transfer's sender. Another identity's
// PATCH is a 404 (as for a transfer that does not exist), during the upload and
// after it; the sender's PATCH after completion is refused (409 at an earlier
// offset, 413 with bytes past the end), and only an empty one is accepted.
func TestAuthZUploadOnlyBySender(t *testing.T) {
	env := gatewaytest.Start(t)
	defer memoryNow(t, env).back(t)
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			alice := env.NewClient(gatewaytest.Alice, tr.quic).In(t)
			team := env.NewClient(gatewaytest.Team, tr.quic).In(t)
			dms := env.NewClient(gatewaytest.DMS, tr.quic).In(t)
			key := team.Register()
			ct := gatewaytest.Encrypt(t, bytes.Repeat([]byte("exhibit "), 4096), key.Recipient())
			st, xfer, _ := alice.Create([]string{gatewaytest.Team}, nil, ct, nil)
			if st != http.StatusCreated {
				t.Fatalf("create: %d", st)
			}
			for name, c := range map[string]*gatewaytest.Client{"recipient": team, "stranger": dms} {
				if st, b, _ := c.Upload(xfer.ID, 0, ct); st != http.StatusNotFound {
					t.Errorf("%s PATCH during the upload: %d %s, want 404", name, st, b)
				}
			}
			if st, b, _ := alice.Upload(xfer.ID, 0, ct); st != http.StatusNoContent {
				t.Fatalf("upload: %d %s", st, b)
			}
			other := gatewaytest.Encrypt(t, []byte("substitute"), key.Recipient())
			for name, c := range map[string]*gatewaytest.Client{"recipient": team, "stranger": dms} {
				if st, b, _ := c.Upload(xfer.ID, int64(len(ct)), other); st != http.StatusNotFound {
					t.Errorf("%s PATCH after completion: %d %s, want 404", name, st, b)
				}
			}
			if st, b, h := alice.Upload(xfer.ID, 0, other); st != http.StatusConflict || h.Get(api.HeaderUploadOffset) != itoa(len(ct)) {
				t.Errorf("sender PATCH at 0 after completion: %d %s, want 409 at offset %d", st, b, len(ct))
			}
			if st, b, _ := alice.Upload(xfer.ID, int64(len(ct)), other); st != http.StatusRequestEntityTooLarge {
				t.Errorf("sender PATCH past the end after completion: %d %s, want 413", st, b)
			}
			if st, b, _ := alice.Upload(xfer.ID, int64(len(ct)), nil); st != http.StatusNoContent {
				t.Errorf("sender's empty PATCH at the end (a retried completion): %d %s, want 204", st, b)
			}
			if st, got, _ := team.Do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil); st != http.StatusOK || !bytes.Equal(got, ct) {
				t.Errorf("after the replays the recipient gets %d, %d bytes; want the original %d", st, len(got), len(ct))
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestAuthZRevokedAfterUpload: a recipient revoked after the upload cannot
// download: the handshake is refused, and no delivery is audited.
func TestAuthZRevokedAfterUpload(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	defer memoryNow(t, env).back(t)
	alice := env.NewClient(gatewaytest.Alice, false).In(t)
	team := env.NewClient(gatewaytest.Team, false).In(t)
	s := sendToTeam(t, env, alice, team)
	env.Config.Identity.Revoked = append(env.Config.Identity.Revoked, gatewaytest.Team)
	env.Restart()
	cl := gatewaytest.HTTPClient(t, env.TLSConfig(env.LoadSVID(gatewaytest.Team)), false)
	resp, err := cl.Get("https://" + env.Addr + api.PathTransfer + s.id + "/content")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("revoked recipient downloaded: %d", resp.StatusCode)
	}
	if n := deliveries(env, s.id); n != 0 {
		t.Fatalf("%d deliveries audited for a revoked recipient", n)
	}
}

// TestAuthZRecipientsBoundToManifest: the recipients a policy decided on cannot
// change afterwards. A manifest whose recipient list was edited without
// re-signing is refused at creation; a recipient added to the stored transfer
// behind the gateway's back (the store is not trusted) sees nothing and gets
// nothing, and the transfer is not delivered to anyone while it disagrees with
// its signed manifest.
func TestAuthZRecipientsBoundToManifest(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	defer memoryNow(t, env).back(t)
	alice := env.NewClient(gatewaytest.Alice, false).In(t)
	team := env.NewClient(gatewaytest.Team, false).In(t)
	dms := env.NewClient(gatewaytest.DMS, false).In(t)
	s := sendToTeam(t, env, alice, team)

	// An edited manifest: the signature no longer covers it.
	_, b := alice.JSON(http.MethodGet, api.PathTransfer+s.id, nil)
	var xfer api.Transfer
	json.Unmarshal(b, &xfer)
	sm := xfer.Manifest
	edited := bytes.Replace(sm.Payload, []byte(gatewaytest.Team), []byte(gatewaytest.DMS), 1)
	if bytes.Equal(edited, sm.Payload) {
		t.Fatalf("manifest %s does not name the team", sm.Payload)
	}
	sm.Payload = edited
	before := env.StoreStats()
	if st, b := alice.JSON(http.MethodPost, api.PathTransfers, api.CreateTransferRequest{Manifest: sm}); st != http.StatusBadRequest || !strings.Contains(string(b), "signature") {
		t.Errorf("create with an edited recipient list: %d %s, want 400 naming the signature", st, b)
	}
	if after := env.StoreStats(); after != before {
		t.Errorf("store changed: %+v → %+v", before, after)
	}

	// A recipient added in the store.
	db, err := sql.Open("sqlite", filepath.Join(env.Config.Store.Dir, "lexgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO recipients (transfer_id, pos, recipient) VALUES (?, 1, ?)`, s.id, gatewaytest.DMS); err != nil {
		t.Fatal(err)
	}
	if st, b := dms.JSON(http.MethodGet, api.PathInbox, nil); st != http.StatusOK || strings.Contains(string(b), s.id) {
		t.Errorf("added recipient's inbox: %d %s; want it without the transfer", st, b)
	}
	for _, p := range []string{api.PathTransfer + s.id, api.PathTransfer + s.id + "/content"} {
		if st, b, _ := dms.Do(http.MethodGet, p, nil, nil); st != http.StatusNotFound {
			t.Errorf("added recipient GET %s: %d %s, want 404", p, st, b)
		}
	}
	if st, b, _ := team.Do(http.MethodGet, api.PathTransfer+s.id+"/content", nil, nil); st == http.StatusOK {
		t.Errorf("a transfer whose recipients disagree with its manifest was delivered: %d, %d bytes", st, len(b))
	}
	if n := deliveries(env, s.id); n != 0 {
		t.Errorf("%d deliveries audited", n)
	}
}

// TestAuthZNo0RTT: the QUIC listener never accepts early data, so nothing that
// changes state can be replayed from a captured 0-RTT flight. A client that
// resumes a session and sends a state-changing request at once gets it done
// only after the handshake, never in 0-RTT.
func TestAuthZNo0RTT(t *testing.T) {
	env := gatewaytest.Start(t)
	defer memoryNow(t, env).back(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc := env.TLSConfig(env.LoadSVID(gatewaytest.Alice))
	tc.NextProtos = []string{http3.NextProtoH3}
	tickets := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), put: make(chan struct{}, 1)}
	tc.ClientSessionCache = tickets
	tr := &http3.Transport{}
	defer tr.Close()
	get := func(conn *quic.Conn, method string) int {
		t.Helper()
		var body *bytes.Reader
		if method == http.MethodPut {
			id := newRecipient(t)
			b, _ := json.Marshal(api.KeysRequest{Recipients: []string{id}})
			body = bytes.NewReader(b)
		} else {
			body = bytes.NewReader(nil)
		}
		req, _ := http.NewRequestWithContext(ctx, method, "https://"+env.Addr+api.PathKeys+"?id="+gatewaytest.Alice, body)
		resp, err := tr.NewClientConn(conn).RoundTrip(req)
		if err != nil {
			t.Fatalf("%s over QUIC: %v", method, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	c1, err := quic.DialAddr(ctx, env.Addr, tc, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	get(c1, http.MethodPut)
	select { // a session ticket arrives after the handshake
	case <-tickets.put:
	case <-time.After(time.Minute):
		t.Fatal("the gateway sent no session ticket to resume with")
	}
	c1.CloseWithError(0, "")

	c2, err := quic.DialAddrEarly(ctx, env.Addr, tc, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseWithError(0, "")
	if st := get(c2, http.MethodPut); st != http.StatusOK {
		t.Fatalf("PUT on the resumed connection: %d", st)
	}
	<-c2.HandshakeComplete()
	cs := c2.ConnectionState()
	if cs.Used0RTT {
		t.Fatal("the gateway accepted 0-RTT data")
	}
	if !cs.TLS.DidResume {
		t.Fatal("the second connection did not resume the session, so it could not have sent early data")
	}
	t.Logf("resumed session: %v; 0-RTT used: %v", cs.TLS.DidResume, cs.Used0RTT)
}

// ticketCache tells of each session ticket the client stores.
type ticketCache struct {
	tls.ClientSessionCache
	put chan struct{}
}

func (c *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case c.put <- struct{}{}:
		default:
		}
	}
}
