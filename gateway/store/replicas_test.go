package store

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Replica tests: two stores on one database and one spool (or bucket), as two gateway
// replicas use them, racing each other. On SQLite, where one process owns a
// store, both "replicas" are the same store: the assertions are the same.

// twoReplicas returns two stores sharing their metadata and spool.
var replicaDrivers = []struct {
	name string
	open func(t *testing.T) (a, b *Store)
}{
	{"sqlite", func(t *testing.T) (*Store, *Store) {
		s := openStore(t, t.TempDir())
		return s, s
	}},
	{"postgres", postgresReplicas},
	{"postgres+s3", func(t *testing.T) (*Store, *Store) {
		pg := postgresCluster(t)
		dsn, err := pg.NewDatabase(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		s3cfg := s3Config(t, t.TempDir())
		open := func(replica string) *Store {
			s, err := Open(t.Context(), Config{Dir: t.TempDir(), Driver: DriverPostgres, Postgres: PostgresConfig{DSN: dsn},
				Replica: replica, Ciphertext: CiphertextS3, S3: s3cfg})
			if err != nil {
				t.Fatalf("Open(postgres+s3): %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return open("r1"), open("r2")
	}},
}

var replicaTests = []struct {
	name string
	fn   func(t *testing.T, a, b *Store)
}{
	{"CreateSameManifest", testRaceCreate},
	{"CompleteUpload", testRaceComplete},
	{"Seal", testRaceSeal},
	{"QuarantineAndAck", testRaceQuarantineAck},
	{"CountDownload", testRaceCountDownload},
	{"Approve", testRaceApprove},
	{"ResumeOnOther", testResumeOnOtherReplica},
	{"NamedLock", testNamedLock},
	{"AdminState", testAdminState},
}

func TestReplicas(t *testing.T) {
	for _, d := range replicaDrivers {
		t.Run(d.name, func(t *testing.T) {
			for _, tt := range replicaTests {
				t.Run(tt.name, func(t *testing.T) {
					a, b := d.open(t)
					tt.fn(t, a, b)
				})
			}
		})
	}
}

// race runs f(i, replica) n times on each replica at once and waits.
func race(n int, a, b *Store, f func(i int, s *Store)) {
	var wg sync.WaitGroup
	for i := range 2 * n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() { defer wg.Done(); f(i, s) }()
	}
	wg.Wait()
}

func testRaceCreate(t *testing.T, a, b *Store) {
	content := randomBytes(t, 100)
	proto := newTransfer(t, alice, content, bob)
	var mu sync.Mutex
	var created, exists int
	race(8, a, b, func(_ int, s *Store) {
		tr := *proto
		err := s.CreateTransfer(t.Context(), &tr)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			created++
		case errors.Is(err, ErrExists):
			exists++
		default:
			t.Errorf("CreateTransfer: %v", err)
		}
	})
	if created != 1 || exists != 15 {
		t.Errorf("%d created, %d ErrExists; want 1 and 15", created, exists)
	}
}

// testRaceComplete: every writer sends the whole ciphertext as one range at
// once; exactly one write completes the upload, the content is exact.
func testRaceComplete(t *testing.T, a, b *Store) {
	content := randomBytes(t, 3<<20+17)
	tr := create(t, a, content)
	var mu sync.Mutex
	done := 0
	race(4, a, b, func(_ int, s *Store) {
		p, err := s.WriteRange(t.Context(), tr.ID, 0, int64(len(content)), bytes.NewReader(content), t0)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("WriteRange: %v", err)
		}
		if p.Done {
			done++
		}
	})
	if done != 1 {
		t.Errorf("%d writes completed the upload, want 1", done)
	}
	assertContent(t, a, tr.ID, content)
	assertContent(t, b, tr.ID, content)
}

// testRaceSeal: two different seals of one streamed upload race; exactly one
// is taken, the other refused.
func testRaceSeal(t *testing.T, a, b *Store) {
	content := randomBytes(t, 200_000)
	tr := newTransfer(t, alice, content, bob)
	tr.CiphertextSHA256 = ""
	if err := a.CreateTransfer(t.Context(), tr); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteAt(t.Context(), tr.ID, 0, bytes.NewReader(content), t0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var won []string
	race(3, a, b, func(i int, s *Store) {
		mh := hexSHA([]byte{byte(i)})
		err := s.Seal(t.Context(), tr.ID, Seal{CiphertextSHA256: hexSHA(content), ManifestHash: mh, Manifest: []byte(`{"v":2}`)}, t0)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			won = append(won, mh)
		case !errors.Is(err, ErrInvalid):
			t.Errorf("Seal: %v", err)
		}
	})
	got, err := b.Transfer(t.Context(), tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(won) != 1 || got.State != StateReady || got.ManifestHash != won[0] {
		t.Errorf("seals taken %v; stored %s with manifest %s; want exactly one, stored", won, got.State, got.ManifestHash)
	}
}

// testRaceQuarantineAck: a quarantine and acknowledgements race; the
// transfer ends quarantined with its bytes gone, and an ack either was
// recorded before or was refused, never lost.
func testRaceQuarantineAck(t *testing.T, a, b *Store) {
	content := randomBytes(t, 1000)
	tr := newTransfer(t, alice, content, bob, carol)
	createUploaded(t, a, tr, content)
	var mu sync.Mutex
	acked := map[string]bool{}
	race(2, a, b, func(i int, s *Store) {
		if i < 2 {
			if err := s.Quarantine(t.Context(), tr.ID); err != nil {
				t.Errorf("Quarantine: %v", err)
			}
			return
		}
		who := []string{bob, carol}[i%2]
		err := s.Ack(t.Context(), tr.ID, who, t0)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			acked[who] = true
		case !errors.Is(err, ErrNotComplete):
			t.Errorf("Ack: %v", err)
		}
	})
	got, err := a.Transfer(t.Context(), tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateQuarantined {
		t.Errorf("state %s, want quarantined", got.State)
	}
	for _, r := range []string{bob, carol} {
		if _, ok := got.Acked[r]; ok != acked[r] {
			t.Errorf("%s: ack stored %v, ack returned success %v", r, ok, acked[r])
		}
	}
	if _, err := b.Open(t.Context(), tr.ID); !errors.Is(err, ErrNotComplete) {
		t.Errorf("Open(quarantined) = %v, want ErrNotComplete", err)
	}
}

func testRaceCountDownload(t *testing.T, a, b *Store) {
	tr := newTransfer(t, alice, randomBytes(t, 10), bob)
	if err := a.CreateTransfer(t.Context(), tr); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ok, limited int
	race(10, a, b, func(_ int, s *Store) {
		_, err := s.CountDownload(t.Context(), tr.ID, Download{Recipient: bob, Counted: true, Max: 3, Now: t0})
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrLimit):
			limited++
		default:
			t.Errorf("CountDownload: %v", err)
		}
	})
	if ok != 3 || limited != 17 {
		t.Errorf("%d counted, %d refused; want 3 and 17", ok, limited)
	}
}

func testRaceApprove(t *testing.T, a, b *Store) {
	r := &MatterRequest{Matter: "M-1", Recipient: bob, RequestedBy: alice, Created: t0}
	if err := a.CreateMatterRequest(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var approved []string
	race(4, a, b, func(i int, s *Store) {
		who := []string{carol, "spiffe://harbor-law.example/partner/dan"}[i%2]
		got, err := s.ApproveMatterRequest(t.Context(), r.ID, who, t0)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			approved = append(approved, got.ApprovedBy)
		case !errors.Is(err, ErrExists):
			t.Errorf("Approve: %v", err)
		}
	})
	got, err := b.MatterRequestByID(t.Context(), r.ID)
	if len(approved) != 1 || err != nil || got.ApprovedBy != approved[0] {
		t.Errorf("approvals %v, stored %q (%v); want exactly one, stored", approved, got.ApprovedBy, err)
	}
}

// testResumeOnOtherReplica: an upload begun on one replica resumes on the
// other from the durable offset, in order and by ranges.
func testResumeOnOtherReplica(t *testing.T, a, b *Store) {
	content := randomBytes(t, 1<<20)
	tr := create(t, a, content)
	if n, err := a.WriteAt(t.Context(), tr.ID, 0, bytes.NewReader(content[:300_000]), t0); n != 300_000 || err != nil {
		t.Fatalf("WriteAt on a = %d, %v", n, err)
	}
	if _, err := b.WriteAt(t.Context(), tr.ID, 0, bytes.NewReader(content), t0); !errors.Is(err, ErrOffset) {
		t.Fatalf("WriteAt on b from 0 = %v, want ErrOffset", err)
	}
	if p, err := b.WriteRange(t.Context(), tr.ID, 700_000, 1<<20, bytes.NewReader(content[700_000:]), t0); err != nil || p.Offset != 300_000 {
		t.Fatalf("WriteRange on b = %+v, %v", p, err)
	}
	p, err := a.UploadProgress(t.Context(), tr.ID)
	if err != nil || p.Offset != 300_000 || len(p.Ranges) != 1 {
		t.Fatalf("progress on a = %+v, %v", p, err)
	}
	p, err = a.WriteRange(t.Context(), tr.ID, 300_000, 700_000, bytes.NewReader(content[300_000:700_000]), t0)
	if err != nil || !p.Done {
		t.Fatalf("last range on a = %+v, %v", p, err)
	}
	assertContent(t, b, tr.ID, content)
}

// testNamedLock: a named lock held on one replica keeps the other waiting
// until it is released.
func testNamedLock(t *testing.T, a, b *Store) {
	unlock, err := a.Lock(t.Context(), "sweep")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if u, err := b.Lock(ctx, "sweep"); !errors.Is(err, context.DeadlineExceeded) {
		if u != nil {
			u()
		}
		t.Fatalf("Lock while held elsewhere = %v, want context.DeadlineExceeded", err)
	}
	if u, err := b.Lock(t.Context(), "other"); err != nil {
		t.Errorf("Lock(other) = %v", err)
	} else {
		u()
	}
	unlock()
	u, err := b.Lock(t.Context(), "sweep")
	if err != nil {
		t.Fatalf("Lock after release = %v", err)
	}
	u()
}

// TestPostgresRestartMidUpload: the database goes away in the middle of an
// upload. The write fails with an error (nothing half-done becomes
// deliverable), and once the database is back the upload resumes from the
// durable offset and completes byte-exact.
func TestPostgresRestartMidUpload(t *testing.T) {
	pg := postgresCluster(t)
	dsn, err := pg.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s := openReplica(t, t.TempDir(), dsn, "r1")
	content := randomBytes(t, 1<<20)
	tr := create(t, s, content)
	if _, err := s.WriteAt(t.Context(), tr.ID, 0, bytes.NewReader(content[:400_000]), t0); err != nil {
		t.Fatal(err)
	}
	if err := pg.StopServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			pg.Start(context.Background())
		}
	})
	if _, err := s.WriteAt(t.Context(), tr.ID, 400_000, bytes.NewReader(content[400_000:]), t0); err == nil {
		t.Fatal("WriteAt with the database down succeeded")
	}
	if _, err := s.Open(t.Context(), tr.ID); err == nil {
		t.Fatal("Open with the database down succeeded")
	}
	if err := pg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	p, err := s.UploadProgress(t.Context(), tr.ID)
	if err != nil {
		t.Fatalf("UploadProgress after restart: %v", err)
	}
	if p.Offset != 400_000 {
		t.Fatalf("durable offset after restart %d, want 400000 (the failed write recorded nothing)", p.Offset)
	}
	if _, err := s.Open(t.Context(), tr.ID); !errors.Is(err, ErrNotComplete) {
		t.Fatalf("Open(half uploaded) = %v, want ErrNotComplete", err)
	}
	if _, err := s.WriteAt(t.Context(), tr.ID, p.Offset, bytes.NewReader(content[p.Offset:]), t0); err != nil {
		t.Fatalf("resume after restart: %v", err)
	}
	assertContent(t, s, tr.ID, content)
}

// TestReplicasFirst: of acks and quarantines racing on two replicas exactly
// one is first, the one the core logs.
func TestReplicasFirst(t *testing.T) {
	for _, d := range replicaDrivers {
		t.Run(d.name, func(t *testing.T) {
			a, b := d.open(t)
			content := randomBytes(t, 1000)
			tr := newTransfer(t, alice, content, bob)
			createUploaded(t, a, tr, content)
			var mu sync.Mutex
			firsts := 0
			race(5, a, b, func(i int, s *Store) {
				first, err := s.AckOnce(t.Context(), tr.ID, bob, t0.Add(time.Duration(i)))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("AckOnce: %v", err)
				}
				if first {
					firsts++
				}
			})
			if firsts != 1 {
				t.Errorf("%d acks were first, want 1", firsts)
			}
			firsts = 0
			race(5, a, b, func(i int, s *Store) {
				first, err := s.QuarantineOnce(t.Context(), tr.ID)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("QuarantineOnce: %v", err)
				}
				if first {
					firsts++
				}
			})
			if firsts != 1 {
				t.Errorf("%d quarantines were first, want 1", firsts)
			}
		})
	}
}

// testAdminState: revocations and admin quarantines (the admin plane's
// state) made through one replica are seen by the other at once.
func testAdminState(t *testing.T, a, b *Store) {
	r := Revocation{ID: "spiffe://harbor-law.example/paralegal/mallory", By: alice, At: t0, Reason: "left the firm"}
	if err := a.Revoke(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke(t.Context(), r); !errors.Is(err, ErrExists) {
		t.Errorf("second Revoke = %v, want ErrExists", err)
	}
	if rs, err := b.Revocations(t.Context()); err != nil || len(rs) != 1 || rs[0] != r {
		t.Errorf("Revocations on the other replica = %+v, %v", rs, err)
	}
	content := randomBytes(t, 100)
	tr := newTransfer(t, alice, content, bob)
	createUploaded(t, a, tr, content)
	ids, err := a.AdminQuarantine(t.Context(), Selector{Transfer: tr.ID}, alice, t0, "incident 42")
	if err != nil || len(ids) != 1 {
		t.Fatalf("AdminQuarantine = %v, %v", ids, err)
	}
	if q, err := b.AdminQuarantined(t.Context(), tr.ID); err != nil || !q {
		t.Errorf("AdminQuarantined on the other replica = %v, %v", q, err)
	}
	if ids, err := b.AdminRelease(t.Context(), Selector{Transfer: tr.ID}); err != nil || len(ids) != 1 {
		t.Errorf("AdminRelease = %v, %v", ids, err)
	}
	if _, err := b.Unrevoke(t.Context(), r.ID); err != nil {
		t.Errorf("Unrevoke: %v", err)
	}
}
