package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"
)

// stageBytes stages content as the SFTP front's ingest does and returns the
// staging file's path.
func stageBytes(t testing.TB, s *Store, content []byte) string {
	t.Helper()
	f, err := s.Stage()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// recentUpload describes content uploaded by account "dms" to dir/name, for
// the window of a minute from t0.
func recentUpload(dir, name string, content []byte) RecentUpload {
	sum := sha256.Sum256(content)
	return RecentUpload{Account: "dms", Dir: dir, Name: name, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:]),
		Modified: t0, Finished: t0, Expires: t0.Add(time.Minute)}
}

// testRecentUploads: an upload recorded with its transfer is listed and
// found again; an identical one (under its name or an alias) within the
// window stores nothing and names the first; a different one replaces it;
// times set, renames and the sweep behave; reopening keeps it all.
func testRecentUploads(t *testing.T, openStore func(testing.TB, string) *Store) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openStore(t, dir)
	content := randomBytes(t, 1<<20+3)
	u := recentUpload("bob", "a.pdf", content)
	tr := newTransfer(t, alice, content, bob)
	if err := s.CreateReadyUpload(ctx, tr, stageBytes(t, s, content), t0, u); err != nil {
		t.Fatalf("CreateReadyUpload: %v", err)
	}
	got, err := s.RecentUploadOf(ctx, "dms", "bob", "a.pdf", t0)
	if want := u; err != nil || got.Transfer != tr.ID || got.Size != want.Size || got.SHA256 != want.SHA256 || !got.Expires.Equal(want.Expires) {
		t.Fatalf("RecentUploadOf = %+v, %v; want %+v with transfer %s", got, err, want, tr.ID)
	}

	s = openStore(t, dir) // a restart remembers it
	for _, tt := range []struct {
		name    string
		u       RecentUpload
		aliases []string
	}{
		{"same name", u, nil},
		{"alias", recentUpload("bob", "a.pdf.filepart", content), []string{"a.pdf"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := s.FindUpload(ctx, tt.u, t0.Add(time.Second), tt.aliases...); err != nil || d.Transfer != tr.ID {
				t.Errorf("FindUpload = %+v, %v; want transfer %s", d, err, tr.ID)
			}
			dup := newTransfer(t, alice, content, bob)
			err := s.CreateReadyUpload(ctx, dup, stageBytes(t, s, content), t0.Add(time.Second), tt.u, tt.aliases...)
			var de *DuplicateUploadError
			if !errors.As(err, &de) || !errors.Is(err, ErrDuplicateUpload) || de.Of.Transfer != tr.ID {
				t.Fatalf("identical CreateReadyUpload = %v; want a DuplicateUploadError naming %s", err, tr.ID)
			}
			if _, err := s.Transfer(ctx, dup.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("the duplicate's transfer exists: %v", err)
			}
		})
	}
	if st, err := s.Stats(ctx); err != nil || st.SpoolFiles != 1 {
		t.Errorf("Stats = %+v, %v; want only the first upload's ciphertext", st, err)
	}
	if n, err := s.CleanStaging(); err != nil || n != 0 {
		t.Errorf("CleanStaging = %d, %v; want no staged file left", n, err)
	}

	// A different content under the same name is a new transfer, and replaces it.
	other := randomBytes(t, 100)
	u2 := recentUpload("bob", "a.pdf", other)
	tr2 := newTransfer(t, alice, other, bob)
	if err := s.CreateReadyUpload(ctx, tr2, stageBytes(t, s, other), t0.Add(2*time.Second), u2); err != nil {
		t.Fatalf("CreateReadyUpload of other content: %v", err)
	}
	if _, err := s.FindUpload(ctx, u, t0.Add(2*time.Second)); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindUpload of the replaced content = %v; want ErrNotFound", err)
	}

	mod := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.SetUploadTime(ctx, "dms", "bob", "a.pdf", mod, t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUploadTime(ctx, "dms", "bob", "none.pdf", mod, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetUploadTime of no upload = %v; want ErrNotFound", err)
	}
	if err := s.RecordUpload(ctx, recentUpload("bob", "b.pdf.filepart", content)); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameUpload(ctx, "dms", "bob", "b.pdf.filepart", "bob", "b.pdf", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameUpload(ctx, "dms", "bob", "gone", "bob", "x", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("RenameUpload of no upload = %v; want ErrNotFound", err)
	}
	list, err := s.RecentUploads(ctx, "dms", "bob", t0.Add(3*time.Second))
	if err != nil || len(list) != 2 || list[0].Name != "a.pdf" || !list[0].Modified.Equal(mod) || list[0].Transfer != tr2.ID || list[1].Name != "b.pdf" {
		t.Fatalf("RecentUploads = %+v, %v; want a.pdf (time set, transfer %s) and b.pdf", list, err, tr2.ID)
	}
	if list, err := s.RecentUploads(ctx, "other", "bob", t0); err != nil || len(list) != 0 {
		t.Errorf("another account's RecentUploads = %+v, %v; want none", list, err)
	}

	// Forgetting an upload takes only the record of that transfer.
	wrong := u2
	wrong.Transfer = "0123456789abcdef0123456789abcdef"
	if err := s.ForgetUpload(ctx, wrong); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecentUploadOf(ctx, "dms", "bob", "a.pdf", t0); err != nil {
		t.Errorf("ForgetUpload of another transfer removed the record: %v", err)
	}
	u2.Transfer = tr2.ID
	if err := s.ForgetUpload(ctx, u2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecentUploadOf(ctx, "dms", "bob", "a.pdf", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecentUploadOf after ForgetUpload = %v; want ErrNotFound", err)
	}

	// Past the window nothing is seen, and the sweep deletes it.
	late := t0.Add(time.Minute)
	if list, err := s.RecentUploads(ctx, "dms", "bob", late); err != nil || len(list) != 0 {
		t.Errorf("RecentUploads after the window = %+v, %v; want none", list, err)
	}
	if _, err := s.RecentUploadOf(ctx, "dms", "bob", "b.pdf", late); !errors.Is(err, ErrNotFound) {
		t.Errorf("RecentUploadOf after the window = %v; want ErrNotFound", err)
	}
	if n, err := s.SweepUploads(ctx, t0.Add(-time.Second)); err != nil || n != 0 {
		t.Errorf("SweepUploads within the window = %d, %v; want 0", n, err)
	}
	if n, err := s.SweepUploads(ctx, late); err != nil || n != 1 {
		t.Errorf("SweepUploads = %d, %v; want 1", n, err)
	}
	if err := s.RecordUpload(ctx, RecentUpload{Account: "dms"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("RecordUpload of an incomplete record = %v; want ErrInvalid", err)
	}
}

// testRecentUploadsRace: identical uploads finishing at once make exactly
// one transfer; every other call reports it as their duplicate.
func testRecentUploadsRace(t *testing.T, openStore func(testing.TB, string) *Store) {
	ctx := t.Context()
	s := openStore(t, t.TempDir())
	content := randomBytes(t, 64<<10)
	u := recentUpload("bob", "race.pdf", content)
	const n = 6
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	paths := make([]string, n)
	for i := range n {
		paths[i] = stageBytes(t, s, content)
	}
	for i := range n {
		wg.Go(func() {
			tr := newTransfer(t, alice, content, bob)
			errs[i] = s.CreateReadyUpload(ctx, tr, paths[i], t0, u)
			ids[i] = tr.ID
		})
	}
	wg.Wait()
	var created string
	for i, err := range errs {
		var de *DuplicateUploadError
		switch {
		case err == nil && created == "":
			created = ids[i]
		case err == nil:
			t.Errorf("two transfers for one upload: %s and %s", created, ids[i])
		case !errors.As(err, &de):
			t.Errorf("CreateReadyUpload: %v", err)
		}
	}
	for i, err := range errs {
		var de *DuplicateUploadError
		if errors.As(err, &de) && de.Of.Transfer != created {
			t.Errorf("call %d: duplicate of %s, want %s", i, de.Of.Transfer, created)
		}
	}
	if created == "" {
		t.Fatal("no call created the transfer")
	}
	if st, err := s.Stats(ctx); err != nil || st.SpoolFiles != 1 {
		t.Errorf("Stats = %+v, %v; want one ciphertext", st, err)
	}
}
