package store

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestCountDownloadAtomic: of many concurrent counted downloads exactly Max
// succeed; the others get a *LimitError saying "Max of Max".
func testCountDownloadAtomic(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	tr := newTransfer(t, alice, randomBytes(t, 100), bob)
	tr.Obligations = Obligations{RetentionDays: 1, MaxDownloads: 5, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := s.CreateTransfer(ctx, tr); err != nil {
		t.Fatal(err)
	}
	var ok, limited int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.CountDownload(ctx, tr.ID, Download{Recipient: bob, Counted: true, Max: 5, Now: t0})
			var le *LimitError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &le) && le.Count == 5 && le.Max == 5:
				limited++
			default:
				t.Errorf("CountDownload: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 5 || limited != 35 {
		t.Errorf("%d counted, %d refused; want 5 and 35", ok, limited)
	}
	got, err := s.Transfer(ctx, tr.ID)
	if err != nil || got.Downloads[bob] != 5 || got.Obligations != tr.Obligations {
		t.Errorf("stored: downloads %v, obligations %+v (%v)", got.Downloads, got.Obligations, err)
	}
}

// TestCountDownloadRanges: ranges not starting at 0 are free, and at the
// limit only within the resume window of the last counted download.
func testCountDownloadRanges(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	tr := newTransfer(t, alice, randomBytes(t, 100), bob)
	if err := s.CreateTransfer(ctx, tr); err != nil {
		t.Fatal(err)
	}
	d := func(counted bool, now time.Time) error {
		_, err := s.CountDownload(ctx, tr.ID, Download{Recipient: bob, Counted: counted, Max: 1, ResumeWindow: time.Hour, Now: now})
		return err
	}
	for _, tc := range []struct {
		name    string
		counted bool
		at      time.Duration
		limit   bool
	}{
		{"range before any download", false, 0, false},
		{"first download", true, time.Minute, false},
		{"range within the window", false, 30 * time.Minute, false},
		{"second download", true, 40 * time.Minute, true},
		{"range after the window", false, 2 * time.Hour, true},
	} {
		err := d(tc.counted, t0.Add(tc.at))
		if got := errors.Is(err, ErrLimit); got != tc.limit || (err != nil && !got) {
			t.Errorf("%s: %v, want limit %v", tc.name, err, tc.limit)
		}
	}
	if _, err := s.CountDownload(ctx, tr.ID, Download{Recipient: carol, Counted: true, Now: t0}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a stranger's download: %v, want ErrNotFound", err)
	}
}

// TestHoldsRequestsDestructions: the legal hold, four-eyes and destruction records.
func testHoldsRequestsDestructions(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	h := Hold{Matter: "M-1", By: alice, At: t0, Reason: "litigation"}
	if err := s.PlaceHold(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := s.PlaceHold(ctx, h); !errors.Is(err, ErrExists) {
		t.Errorf("placing twice: %v", err)
	}
	if got, err := s.HoldOn(ctx, "M-1"); err != nil || got != h {
		t.Errorf("HoldOn: %+v %v", got, err)
	}
	if _, err := s.LiftHold(ctx, "M-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LiftHold(ctx, "M-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("lifting twice: %v", err)
	}

	r := MatterRequest{Matter: "M-1", Recipient: bob, RequestedBy: alice, Reason: "review", Created: t0}
	if err := s.CreateMatterRequest(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApproveMatterRequest(ctx, r.ID, alice, t0); !errors.Is(err, ErrSelfApproval) {
		t.Errorf("self-approval: %v", err)
	}
	if p, _ := s.PendingMatterRequests(ctx); len(p) != 1 {
		t.Errorf("pending: %+v", p)
	}
	if _, err := s.ApproveMatterRequest(ctx, r.ID, carol, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApproveMatterRequest(ctx, r.ID, carol, t0); !errors.Is(err, ErrExists) {
		t.Errorf("approving twice: %v", err)
	}
	if g, _ := s.Grants(ctx, "M-1"); len(g) != 1 || g[0].ApprovedBy != carol || g[0].Recipient != bob {
		t.Errorf("grants: %+v", g)
	}

	content := randomBytes(t, 100)
	tr := newTransfer(t, alice, content, bob)
	tr.Obligations.ExpiresAt = t0
	if err := s.CreateTransfer(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(content), t0); err != nil {
		t.Fatal(err)
	}
	if ts, _ := s.ExpiredTransfers(ctx, t0, "", 10); len(ts) != 1 {
		t.Errorf("expired: %d, want 1", len(ts))
	}
	d := Destruction{TransferID: tr.ID, Sender: alice, Recipients: []string{bob}, Matter: tr.Matter, Destroyed: t0, AuditIndex: 7, Certificate: []byte("signed")}
	if err := s.Destroy(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transfer(ctx, tr.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("destroyed transfer still there: %v", err)
	}
	if st, err := s.Stats(ctx); err != nil || st.SpoolFiles != 0 {
		t.Errorf("after Destroy: %+v, %v; want no ciphertext left (spool file or object)", st, err)
	}
	got, err := s.DestructionOf(ctx, tr.ID)
	if err != nil || got.AuditIndex != 7 || string(got.Certificate) != "signed" || got.Recipients[0] != bob {
		t.Errorf("destruction: %+v %v", got, err)
	}
}
