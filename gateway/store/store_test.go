package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)

const (
	alice = "spiffe://harbor-law.example/paralegal/alice"
	bob   = "spiffe://manila-lpo.example/site/review-team"
	carol = "spiffe://harbor-law.example/legacy/dms"
)

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func hexSHA(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// newTransfer returns a transfer from sender to recipients declaring
// content, with a fresh manifest hash.
func newTransfer(t testing.TB, sender string, content []byte, recipients ...string) *Transfer {
	return &Transfer{
		Sender:           sender,
		Recipients:       recipients,
		Matter:           "M-2025-0042",
		Labels:           []string{"privileged"},
		FileCount:        3,
		PlaintextSize:    int64(len(content)) - 10,
		CiphertextSize:   int64(len(content)),
		CiphertextSHA256: hexSHA(content),
		ManifestHash:     hexSHA(randomBytes(t, 32)),
		Manifest:         []byte(`{"v":1}`),
		DecisionID:       "dec-1",
		Created:          t0,
	}
}

// createUploaded creates a transfer and uploads content in one chunk.
func createUploaded(t testing.TB, s *Store, tr *Transfer, content []byte) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateTransfer(ctx, tr); err != nil {
		t.Fatalf("CreateTransfer: %v", err)
	}
	if _, err := s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(content), t0.Add(time.Minute)); err != nil {
		t.Fatalf("WriteAt: %v", err)
	}
}

func testKeys(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	steps := []struct {
		name    string
		put     []string // nil: only get
		putErr  error
		want    []string
		wantAt  time.Time
		wantErr error
	}{
		{name: "missing", wantErr: ErrNotFound},
		{name: "empty list refused", put: []string{}, putErr: ErrInvalid, wantErr: ErrNotFound},
		{name: "register", put: []string{"age1pq1aaa", "age1bbb"}, want: []string{"age1pq1aaa", "age1bbb"}, wantAt: t0},
		{name: "replace", put: []string{"age1pq1ccc"}, want: []string{"age1pq1ccc"}, wantAt: t0.Add(time.Hour)},
	}
	for i, st := range steps {
		now := t0.Add(time.Duration(i-2) * time.Hour)
		if st.put != nil {
			if err := s.PutKeys(ctx, alice, st.put, now); !errors.Is(err, st.putErr) {
				t.Fatalf("%s: PutKeys = %v, want %v", st.name, err, st.putErr)
			}
		}
		got, at, err := s.Keys(ctx, alice)
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("%s: Keys error = %v, want %v", st.name, err, st.wantErr)
		}
		if !reflect.DeepEqual(got, st.want) || !at.Equal(st.wantAt) {
			t.Errorf("%s: Keys = %v, %v; want %v, %v", st.name, got, at, st.want, st.wantAt)
		}
	}
	if _, _, err := s.Keys(ctx, bob); !errors.Is(err, ErrNotFound) {
		t.Errorf("Keys(bob) = %v, want ErrNotFound", err)
	}
}

func testCreateTransferInvalid(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	tests := []struct {
		name   string
		modify func(*Transfer)
	}{
		{"no sender", func(tr *Transfer) { tr.Sender = "" }},
		{"no recipients", func(tr *Transfer) { tr.Recipients = nil }},
		{"repeated recipient", func(tr *Transfer) { tr.Recipients = []string{bob, bob} }},
		{"negative size", func(tr *Transfer) { tr.CiphertextSize = -1 }},
		{"bad ciphertext hash", func(tr *Transfer) { tr.CiphertextSHA256 = "abc" }},
		{"bad manifest hash", func(tr *Transfer) { tr.ManifestHash = "" }},
		{"path in id", func(tr *Transfer) { tr.ID = "../../etc/passwd" }},
		{"upper case id", func(tr *Transfer) { tr.ID = "ABC" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTransfer(t, alice, []byte("x"), bob)
			tt.modify(tr)
			if err := s.CreateTransfer(t.Context(), tr); !errors.Is(err, ErrInvalid) {
				t.Errorf("CreateTransfer = %v, want ErrInvalid", err)
			}
		})
	}
	if st, _ := s.Stats(t.Context()); st.Transfers != 0 {
		t.Errorf("invalid transfers stored: %+v", st)
	}
}

func testCreateTransfer(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	tr := newTransfer(t, alice, []byte("ciphertext"), bob, carol)
	tr.ManifestHash = strings.ToUpper(hexSHA([]byte("manifest"))) // stored lower case
	if err := s.CreateTransfer(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.ID) != 32 || !validID(tr.ID) {
		t.Errorf("ID = %q, want 32 lowercase hex digits", tr.ID)
	}
	if tr.State != StateUploading || tr.Offset != 0 || !tr.Completed.IsZero() {
		t.Errorf("after create: state %s offset %d completed %v", tr.State, tr.Offset, tr.Completed)
	}
	got, err := s.Transfer(ctx, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tr) {
		t.Errorf("Transfer =\n%+v\nwant\n%+v", got, tr)
	}
	byManifest, err := s.TransferByManifest(ctx, alice, tr.ManifestHash)
	if err != nil || byManifest.ID != tr.ID {
		t.Errorf("TransferByManifest = %v, %v; want %s", byManifest, err, tr.ID)
	}

	dups := []struct {
		name    string
		modify  func(*Transfer)
		wantErr error
	}{
		{"same sender and manifest", func(d *Transfer) { d.ManifestHash = tr.ManifestHash }, ErrExists},
		{"same manifest, other sender", func(d *Transfer) { d.ManifestHash = tr.ManifestHash; d.Sender = carol }, nil},
		{"same id", func(d *Transfer) { d.ID = tr.ID }, ErrExists},
	}
	for _, d := range dups {
		dup := newTransfer(t, alice, []byte("other"), bob)
		d.modify(dup)
		if err := s.CreateTransfer(ctx, dup); !errors.Is(err, d.wantErr) {
			t.Errorf("%s: CreateTransfer = %v, want %v", d.name, err, d.wantErr)
		}
	}
	if _, err := s.Transfer(ctx, "0123abcd"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Transfer(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.TransferByManifest(ctx, bob, tr.ManifestHash); !errors.Is(err, ErrNotFound) {
		t.Errorf("TransferByManifest(other sender) = %v, want ErrNotFound", err)
	}
}

func testInboxOutbox(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	content := []byte("sealed bundle")
	mk := func(name string, created time.Duration, upload bool, recipients ...string) *Transfer {
		tr := newTransfer(t, alice, content, recipients...)
		tr.Matter, tr.Created = name, t0.Add(created)
		if upload {
			createUploaded(t, s, tr, content)
		} else if err := s.CreateTransfer(ctx, tr); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	newer := mk("newer", 2*time.Hour, true, bob)
	older := mk("older", time.Hour, true, bob, carol)
	mk("to carol", 0, true, carol)
	mk("unready", 0, false, bob)
	acked := mk("acked", 0, true, bob)
	if err := s.Ack(ctx, acked.ID, bob, t0); err != nil {
		t.Fatal(err)
	}
	wrong := newTransfer(t, alice, content, bob)
	wrong.CiphertextSHA256 = hexSHA([]byte("something else"))
	if err := s.CreateTransfer(ctx, wrong); err != nil {
		t.Fatal(err)
	}
	s.WriteAt(ctx, wrong.ID, 0, bytes.NewReader(content), t0) // quarantined

	inbox, err := s.Inbox(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range inbox {
		got = append(got, tr.Matter)
		if !tr.Deliverable(bob) {
			t.Errorf("%s in inbox but not deliverable", tr.Matter)
		}
	}
	if want := []string{older.Matter, newer.Matter}; !reflect.DeepEqual(got, want) {
		t.Errorf("Inbox(bob) = %v, want %v", got, want)
	}
	if inbox, _ := s.Inbox(ctx, "spiffe://nobody.example/x"); len(inbox) != 0 {
		t.Errorf("Inbox(nobody) = %d transfers, want 0", len(inbox))
	}
	outbox, err := s.Outbox(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(outbox) != 6 {
		t.Errorf("Outbox(alice) = %d transfers, want 6", len(outbox))
	}
}

func testAck(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	content := []byte("abc")
	ready := newTransfer(t, alice, content, bob, carol)
	createUploaded(t, s, ready, content)
	pending := newTransfer(t, alice, content, bob)
	if err := s.CreateTransfer(ctx, pending); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		id, who   string
		at        time.Time
		wantErr   error
		wantAcked time.Time
	}{
		{"first ack", ready.ID, bob, t0, nil, t0},
		{"second ack keeps first time", ready.ID, bob, t0.Add(time.Hour), nil, t0},
		{"not a recipient", ready.ID, alice, t0, ErrNotFound, time.Time{}},
		{"unknown transfer", "ffff", bob, t0, ErrNotFound, time.Time{}},
		{"not ready", pending.ID, bob, t0, ErrNotComplete, time.Time{}},
	}
	for _, tt := range tests {
		if err := s.Ack(ctx, tt.id, tt.who, tt.at); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Ack = %v, want %v", tt.name, err, tt.wantErr)
		}
		if tt.wantErr == nil {
			tr, _ := s.Transfer(ctx, tt.id)
			if !tr.Acked[tt.who].Equal(tt.wantAcked) {
				t.Errorf("%s: acked at %v, want %v", tt.name, tr.Acked[tt.who], tt.wantAcked)
			}
		}
	}
	tr, _ := s.Transfer(ctx, ready.ID)
	if tr.Deliverable(bob) || !tr.Deliverable(carol) || len(tr.Acked) != 1 {
		t.Errorf("after bob's ack: deliverable to bob %v, carol %v, acked %v", tr.Deliverable(bob), tr.Deliverable(carol), tr.Acked)
	}
}

func testDeleteTransfer(t *testing.T, openStore func(testing.TB, string) *Store) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := t.Context()
	content := randomBytes(t, 1000)
	done := newTransfer(t, alice, content, bob)
	createUploaded(t, s, done, content)
	partial := newTransfer(t, alice, content, bob)
	if err := s.CreateTransfer(ctx, partial); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteAt(ctx, partial.ID, 0, bytes.NewReader(content[:10]), t0); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{done.ID, partial.ID} {
		if err := s.DeleteTransfer(ctx, id); err != nil {
			t.Fatalf("DeleteTransfer: %v", err)
		}
		if _, err := s.Transfer(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Transfer after delete = %v, want ErrNotFound", err)
		}
		if err := s.DeleteTransfer(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteTransfer = %v, want ErrNotFound", err)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{}) {
		t.Errorf("Stats after deleting everything = %+v, want zero", st)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "spool")); len(ents) != 0 {
		t.Errorf("spool not empty: %v", ents)
	}
}

func testStats(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := t.Context()
	content := randomBytes(t, 100)
	createUploaded(t, s, newTransfer(t, alice, content, bob), content)
	up := newTransfer(t, alice, content, bob)
	if err := s.CreateTransfer(ctx, up); err != nil {
		t.Fatal(err)
	}
	s.WriteAt(ctx, up.ID, 0, bytes.NewReader(content[:40]), t0)
	bad := newTransfer(t, alice, content, bob)
	bad.CiphertextSHA256 = hexSHA(nil)
	if err := s.CreateTransfer(ctx, bad); err != nil {
		t.Fatal(err)
	}
	s.WriteAt(ctx, bad.ID, 0, bytes.NewReader(content), t0)
	s.PutKeys(ctx, bob, []string{"age1x"}, t0)

	got, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Transfers: 3, Uploading: 1, Ready: 1, Quarantined: 1, Keys: 1, SpoolFiles: 2, SpoolBytes: 140}
	if got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// TestReopen checks that everything survives closing and reopening.
func testReopen(t *testing.T, openStore func(testing.TB, string) *Store) {
	dir := t.TempDir()
	ctx := t.Context()
	content := randomBytes(t, 5000)
	s := openStore(t, dir)
	s.PutKeys(ctx, bob, []string{"age1pq1bob"}, t0)
	ready := newTransfer(t, alice, content, bob, carol)
	createUploaded(t, s, ready, content)
	s.Ack(ctx, ready.ID, carol, t0.Add(time.Hour))
	partial := newTransfer(t, alice, content, bob)
	s.CreateTransfer(ctx, partial)
	s.WriteAt(ctx, partial.ID, 0, bytes.NewReader(content[:1234]), t0)
	before := make(map[string]*Transfer)
	for _, id := range []string{ready.ID, partial.ID} {
		before[id], _ = s.Transfer(ctx, id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}

	s = openStore(t, dir)
	for id, want := range before {
		got, err := s.Transfer(ctx, id)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("after reopen: Transfer(%s) = %+v, %v\nwant %+v", id, got, err, want)
		}
	}
	if keys, at, err := s.Keys(ctx, bob); err != nil || keys[0] != "age1pq1bob" || !at.Equal(t0) {
		t.Errorf("after reopen: Keys = %v, %v, %v", keys, at, err)
	}
	if n, err := s.WriteAt(ctx, partial.ID, 1234, bytes.NewReader(content[1234:]), t0); err != nil || n != int64(len(content)) {
		t.Errorf("resume after reopen: WriteAt = %d, %v", n, err)
	}
	assertContent(t, s, ready.ID, content)
	assertContent(t, s, partial.ID, content)
}

func TestSchemaTooNew(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir).Close()
	db, err := sql.Open("sqlite", filepath.Join(dir, "lexgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(t.Context(), Config{Dir: dir}); err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
}

func TestOpenNoDir(t *testing.T) {
	if _, err := Open(t.Context(), Config{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open(Config{}) = %v, want ErrInvalid", err)
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, dir)
	ctx := t.Context()
	content := randomBytes(t, 100)
	ready := newTransfer(t, alice, content, bob)
	createUploaded(t, s, ready, content)
	partial := newTransfer(t, alice, content, bob)
	s.CreateTransfer(ctx, partial)
	s.WriteAt(ctx, partial.ID, 0, bytes.NewReader(content[:5]), t0)

	want := map[string]os.FileMode{
		dir:                                  0o700 | os.ModeDir,
		filepath.Join(dir, "spool"):          0o700 | os.ModeDir,
		filepath.Join(dir, "lexgate.db"):     0o600,
		filepath.Join(dir, "lexgate.db-wal"): 0o600,
		filepath.Join(dir, "spool", ready.ID+".age"):    0o600,
		filepath.Join(dir, "spool", partial.ID+".part"): 0o600,
	}
	for path, mode := range want {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("stat: %v", err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
		}
	}
}

func assertContent(t *testing.T, s *Store, id string, want []byte) {
	t.Helper()
	f, err := s.Open(t.Context(), id)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	defer f.Close()
	got, err := io.ReadAll(NewBlobStream(f))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("content of %s: %d bytes, want %d (equal %v)", id, len(got), len(want), bytes.Equal(got, want))
	}
}

func testTransferRoundTripZeroValues(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	tr := &Transfer{
		Sender:           alice,
		Recipients:       []string{bob},
		CiphertextSHA256: hexSHA(nil),
		ManifestHash:     hexSHA([]byte("m")),
		Created:          time.Date(2025, 1, 1, 9, 0, 0, 0, time.FixedZone("CET", 3600)),
	}
	if err := s.CreateTransfer(t.Context(), tr); err != nil {
		t.Fatal(err)
	}
	got, err := s.Transfer(t.Context(), tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tr) {
		t.Errorf("Transfer =\n%+v\nwant\n%+v", got, tr)
	}
	now := &Transfer{Sender: alice, Recipients: []string{bob}, CiphertextSHA256: hexSHA(nil), ManifestHash: hexSHA(nil)}
	if err := s.CreateTransfer(t.Context(), now); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Transfer(t.Context(), now.ID); !reflect.DeepEqual(got, now) {
		t.Errorf("with default Created: Transfer =\n%+v\nwant\n%+v", got, now)
	}
}
