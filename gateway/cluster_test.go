package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	fmtlog "github.com/transparency-dev/formats/log"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/internal/enginetest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
	"github.com/lexgate/lexgate/gateway/store"
)

// cluster is the shared backends of a test cluster: PostgreSQL metadata, a
// shared spool directory or a versitygw bucket for the ciphertext, a MariaDB
// audit log and one signing key.
type cluster struct {
	pgDSN, auditDSN, spool, key string
	s3                          *store.S3Config // nil: the shared spool
	gw                          *enginetest.VersityGW
}

// ciphertexts are the ciphertext backends the cluster tests run on.
var ciphertexts = []string{store.CiphertextSpool, store.CiphertextS3}

// startClusterOn starts a cluster whose replicas keep the ciphertext on
// the named backend: a shared spool directory or a versitygw bucket.
func startClusterOn(t *testing.T, ciphertext string) cluster {
	c := startCluster(t)
	if ciphertext != store.CiphertextS3 {
		return c
	}
	gw := enginetest.NewVersityGW(t)
	bucket, err := gw.NewBucket()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := gw.WriteSecret(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c.gw = gw
	c.s3 = &store.S3Config{Endpoint: gw.Endpoint(), Bucket: bucket, AccessKeyID: gw.AccessKey, SecretKeyFile: secret}
	return c
}

func startCluster(t *testing.T) cluster {
	pg := enginetest.NewPostgres(t)
	my := enginetest.NewMariaDB(t)
	var err error
	c := cluster{spool: filepath.Join(t.TempDir(), "spool"), key: filepath.Join(t.TempDir(), "audit.key")}
	if c.pgDSN, err = pg.NewDatabase(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c.auditDSN, err = my.NewDatabase(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

// replica configures a gateway as the named replica of c.
func (c cluster) replica(name string) gatewaytest.Option {
	return gatewaytest.WithConfig(func(cfg *gateway.Config) {
		cfg.DisableQUIC = true
		cfg.Store.Driver = store.DriverPostgres
		cfg.Store.Postgres.DSN = c.pgDSN
		if c.s3 != nil {
			cfg.Store.Ciphertext, cfg.Store.S3 = store.CiphertextS3, *c.s3
		} else {
			cfg.Store.SpoolDir = c.spool
		}
		cfg.Store.Replica = name
		cfg.Audit.MySQL.DSN = c.auditDSN
		cfg.Audit.KeyFile = c.key
	})
}

// events reads the cluster's one audit log, verified against its signed
// checkpoint, as any replica serves it.
func (c cluster) events(t *testing.T, origin string) []audit.Event {
	l, err := audit.Open(t.Context(), audit.Config{MySQL: audit.MySQLConfig{DSN: c.auditDSN}, KeyFile: c.key, Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	v, err := audit.ParseVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	size, err := l.Reader().(interface {
		IntegratedSize(context.Context) (uint64, error)
	}).IntegratedSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for a checkpoint that covers every integrated entry (one comes
	// within the checkpoint interval).
	var cp *fmtlog.Checkpoint
	for cp == nil || cp.Size < size {
		raw, err := l.Reader().ReadCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp, err = audit.OpenCheckpoint(raw, v); err != nil {
			t.Fatal(err)
		}
		if cp.Size < size {
			select {
			case <-ctx.Done():
				t.Fatalf("no checkpoint covers the log's %d entries: %v", size, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	var evs []audit.Event
	if _, err := audit.VerifyLog(ctx, l.Reader(), cp, func(i uint64, _ audit.Leaf) error {
		ev, err := l.Event(ctx, i) // a private entry's body from the shared database
		evs = append(evs, ev)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestClusterReplicas: two replicas on the cluster backends. An upload begun
// on one resumes on the other at the durable offset; the transfer is
// delivered byte-exact by both; an ack sent to both is recorded and logged
// once; both sign with the one log's key.
func TestClusterReplicas(t *testing.T) {
	for _, ct := range ciphertexts {
		t.Run(ct, func(t *testing.T) { testClusterReplicas(t, startClusterOn(t, ct)) })
	}
}

func testClusterReplicas(t *testing.T, c cluster) {
	r1 := gatewaytest.Start(t, c.replica("r1"))
	r2 := r1.StartReplica(t, c.replica("r2"))
	if r1.Gateway.LogKey() != r2.Gateway.LogKey() {
		t.Fatalf("replicas sign with different keys: %s, %s", r1.Gateway.LogKey(), r2.Gateway.LogKey())
	}
	alice1 := newAPIClient(t, r1, gatewaytest.Alice, false)
	team1 := newAPIClient(t, r1, gatewaytest.Team, false)
	pt := make([]byte, 9<<20) // more than one part on S3
	rand.Read(pt)
	ct := encrypt(t, pt, team1.register().Recipient())
	st, xfer, e := alice1.create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create on r1: %d %+v", st, e)
	}
	half := int64(len(ct) / 2)
	if st, b, _ := alice1.upload(xfer.ID, 0, ct[:half]); st != http.StatusNoContent {
		t.Fatalf("first half on r1: %d %s", st, b)
	}
	alice2 := newAPIClient(t, r2, gatewaytest.Alice, false)
	if st, b, _ := alice2.upload(xfer.ID, 0, ct); st != http.StatusConflict {
		t.Fatalf("upload from 0 on r2: %d %s; want 409 with the durable offset", st, b)
	}
	if st, b, _ := alice2.upload(xfer.ID, half, ct[half:]); st != http.StatusNoContent {
		t.Fatalf("second half on r2: %d %s", st, b)
	}
	team2 := newAPIClient(t, r2, gatewaytest.Team, false)
	path := api.PathTransfer + xfer.ID
	for name, cl := range map[string]*apiClient{"r1": team1, "r2": team2} {
		if st, got, _ := cl.do(http.MethodGet, path+"/content", nil, nil); st != http.StatusOK || !bytes.Equal(got, ct) {
			t.Fatalf("download from %s: %d, %d of %d bytes", name, st, len(got), len(ct))
		}
	}
	for _, cl := range []*apiClient{team2, team1} {
		if st, b := cl.json(http.MethodPost, path+"/ack", nil); st/100 != 2 {
			t.Fatalf("ack: %d %s", st, b)
		}
	}
	acks, uploads := 0, 0
	for _, ev := range c.events(t, spiffeid.RequireFromString(gatewaytest.GatewayID).TrustDomain().Name()+"/lexgate-audit") {
		if ev.Transfer != xfer.ID {
			continue
		}
		switch ev.Kind {
		case audit.KindAck:
			acks++
		case audit.KindUploadComplete:
			uploads++
		}
	}
	if acks != 1 || uploads != 1 {
		t.Errorf("the log holds %d acks and %d upload completions of the transfer, want 1 and 1", acks, uploads)
	}
}

// TestClusterInboxWatch: a recipient's inbox watch held by one replica
// answers with a transfer sealed through the other, whose write does not
// wake the first replica's process: the watch polls the shared store.
func TestClusterInboxWatch(t *testing.T) {
	c := startCluster(t)
	r1 := gatewaytest.Start(t, c.replica("r1"))
	r2 := r1.StartReplica(t, c.replica("r2"))
	team1 := newAPIClient(t, r1, gatewaytest.Team, false)
	st, _, hdr := team1.do(http.MethodGet, api.PathInbox, nil, nil)
	if st != http.StatusOK || hdr.Get("ETag") == "" {
		t.Fatalf("inbox on r1: %d, ETag %q", st, hdr.Get("ETag"))
	}
	type answer struct {
		st   int
		body []byte
	}
	got := make(chan answer, 1)
	go func() {
		st, b, _ := team1.do(http.MethodGet, api.PathInbox, nil,
			map[string]string{"If-None-Match": hdr.Get("ETag"), "Prefer": "wait=60"})
		got <- answer{st, b}
	}()
	alice2 := newAPIClient(t, r2, gatewaytest.Alice, false)
	ct := encrypt(t, []byte("sealed on r2"), team1.register().Recipient())
	st, xfer, e := alice2.create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create on r2: %d %+v", st, e)
	}
	if st, b, _ := alice2.upload(xfer.ID, 0, ct); st != http.StatusNoContent {
		t.Fatalf("upload on r2: %d %s", st, b)
	}
	a := <-got
	if a.st != http.StatusOK || !bytes.Contains(a.body, []byte(xfer.ID)) {
		t.Fatalf("the watch on r1 answered %d %s; want 200 listing %s", a.st, a.body, xfer.ID)
	}
}

// TestClusterObjectStoreDown: the object store goes away in the middle of an
// upload (versitygw stopped). The write that needs it gets a 503 the client
// retries on, nothing is deliverable, the durable offset stays where it was;
// once the server is back the upload resumes there and the transfer is
// delivered byte-exact.
func TestClusterObjectStoreDown(t *testing.T) {
	c := startClusterOn(t, store.CiphertextS3)
	r1 := gatewaytest.Start(t, c.replica("r1"))
	alice := newAPIClient(t, r1, gatewaytest.Alice, false)
	team := newAPIClient(t, r1, gatewaytest.Team, false)
	pt := make([]byte, 2<<20)
	rand.Read(pt)
	ct := encrypt(t, pt, team.register().Recipient())
	st, xfer, e := alice.create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	half := int64(len(ct) / 2)
	if st, b, _ := alice.upload(xfer.ID, 0, ct[:half]); st != http.StatusNoContent {
		t.Fatalf("first half: %d %s", st, b)
	}
	if err := c.gw.StopServer(); err != nil {
		t.Fatal(err)
	}
	st, b, _ := alice.upload(xfer.ID, half, ct[half:])
	var ae api.Error
	if json.Unmarshal(b, &ae); st != http.StatusServiceUnavailable || ae.Code != api.CodeUnavailable {
		t.Fatalf("second half with the object store down: %d %s; want 503 %s", st, b, api.CodeUnavailable)
	}
	path := api.PathTransfer + xfer.ID
	if st, got, _ := team.do(http.MethodGet, path+"/content", nil, nil); st == http.StatusOK {
		t.Fatalf("a half-uploaded transfer was delivered (%d bytes)", len(got))
	}
	if err := c.gw.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, b, _ := alice.upload(xfer.ID, half, ct[half:]); st != http.StatusNoContent {
		t.Fatalf("second half once the object store is back: %d %s", st, b)
	}
	if st, got, _ := team.do(http.MethodGet, path+"/content", nil, nil); st != http.StatusOK || !bytes.Equal(got, ct) {
		t.Fatalf("download: %d, %d of %d bytes", st, len(got), len(ct))
	}
}

// TestClusterSFTPOnS3: a file put over SFTP through replica 2 is encrypted
// into replica 2's staging area and stored in the bucket as the transfer's
// object; replica 1 lists it in the recipient's inbox and delivers exactly
// the ciphertext whose hash the transfer records.
func TestClusterSFTPOnS3(t *testing.T) {
	c := startClusterOn(t, store.CiphertextS3)
	key := gatewaytest.NewSSHKey(t, t.TempDir(), "dms_ed25519")
	r1 := gatewaytest.Start(t, c.replica("r1"))
	r2 := r1.StartReplica(t, c.replica("r2"), gatewaytest.WithSFTP(map[string]string{"team": gatewaytest.Team},
		sftpfront.Account{Name: gatewaytest.DMSAccount, ID: gatewaytest.DMS, AuthorizedKeys: []string{key.Authorized}, Matter: "HL-2026-0042"}))
	team1 := newAPIClient(t, r1, gatewaytest.Team, false)
	team1.register()

	pemKey, err := os.ReadFile(key.Private)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r2.Gateway.SFTP().HostPublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ssh.Dial("tcp", r2.SFTPAddr(), &ssh.ClientConfig{User: gatewaytest.DMSAccount,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	fc, err := sftp.NewClient(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	f, err := fc.OpenFile("/outbox/team/brief.pdf", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, 3<<20)
	rand.Read(pt)
	if _, err := f.Write(pt); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close (the upload's end): %v", err)
	}

	st, b, _ := team1.do(http.MethodGet, api.PathInbox, nil, nil)
	var inbox struct {
		Transfers []api.Transfer `json:"transfers"`
	}
	if err := json.Unmarshal(b, &inbox); st != http.StatusOK || err != nil || len(inbox.Transfers) != 1 {
		t.Fatalf("inbox on r1: %d %s (%v)", st, b, err)
	}
	xfer := inbox.Transfers[0]
	st, ct, _ := team1.do(http.MethodGet, api.PathTransfer+xfer.ID+"/content", nil, nil)
	if sum := sha256.Sum256(ct); st != http.StatusOK || hex.EncodeToString(sum[:]) != xfer.CiphertextSHA256 {
		t.Fatalf("download from r1: %d, %d bytes, hash %x; want the recorded %s", st, len(ct), sum, xfer.CiphertextSHA256)
	}
}
