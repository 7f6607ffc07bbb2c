package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// testOutboxFacts (in the driver suite): each fact the store records queues its event in the
// same transaction (ready, first download, ack, hold placed and lifted, a
// four-eyes request made and approved); a refused ack queues nothing.
func testOutboxFacts(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	content := randomBytes(t, 64)
	tr := newTransfer(t, alice, content, bob)
	changed := s.Changed()
	createUploaded(t, s, tr, content)
	select {
	case <-changed:
	default:
		t.Error("Changed not signalled by a committed write")
	}
	if err := s.Ack(ctx, "nope", bob, t0); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.CountDownload(ctx, tr.ID, Download{Recipient: bob, Counted: true, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CountDownload(ctx, tr.ID, Download{Recipient: bob, Counted: true, Now: t0}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Ack(ctx, tr.ID, bob, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PlaceHold(ctx, Hold{Matter: "M-1", By: alice, At: t0, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LiftHold(ctx, "M-1"); err != nil {
		t.Fatal(err)
	}
	r := MatterRequest{Matter: "M-1", Recipient: bob, RequestedBy: alice, Reason: "review", Created: t0}
	if err := s.CreateMatterRequest(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApproveMatterRequest(ctx, r.ID, "spiffe://harbor-law.example/approver/ann", t0); err != nil {
		t.Fatal(err)
	}
	evs, err := s.UnroutedEvents(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{EventTransferReady, EventTransferReceived, EventTransferAcknowledged, EventHoldPlaced,
		EventHoldLifted, EventApprovalRequested, EventApprovalGranted}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, ev := range evs {
		if ev.Kind != want[i] || len(ev.ID) != 32 || time.Since(ev.Created) > time.Hour {
			t.Errorf("event %d: %+v, want kind %s", i, ev, want[i])
		}
	}
	// Both drivers' triggers write the same payload keys for each kind.
	keys := map[string]string{
		EventTransferReady:        "decision_id expires_at matter recipients sender transfer_id",
		EventTransferReceived:     "decision_id matter recipients sender transfer_id",
		EventTransferAcknowledged: "decision_id matter recipients sender transfer_id",
		EventHoldPlaced:           "actor matter",
		EventHoldLifted:           "actor matter",
		EventApprovalRequested:    "actor matter recipients request_id",
		EventApprovalGranted:      "actor matter recipients request_id requested_by",
	}
	for _, ev := range evs {
		var m map[string]any
		if err := json.Unmarshal(ev.Payload, &m); err != nil {
			t.Fatalf("%s payload %s: %v", ev.Kind, ev.Payload, err)
		}
		got := slices.Sorted(maps.Keys(m))
		if strings.Join(got, " ") != keys[ev.Kind] {
			t.Errorf("%s payload keys %v, want %s", ev.Kind, got, keys[ev.Kind])
		}
	}
	var p struct {
		TransferID string   `json:"transfer_id"`
		Sender     string   `json:"sender"`
		Matter     string   `json:"matter"`
		Recipients []string `json:"recipients"`
	}
	if err := json.Unmarshal(evs[0].Payload, &p); err != nil || p.TransferID != tr.ID || p.Sender != alice ||
		p.Matter != tr.Matter || len(p.Recipients) != 1 || p.Recipients[0] != bob {
		t.Errorf("ready payload %s (%v)", evs[0].Payload, err)
	}
}

// testOutboxQuarantineAlert (in the driver suite): a quarantined transfer queues a risk alert
// in the same transaction.
func testOutboxQuarantineAlert(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	content := randomBytes(t, 64)
	tr := newTransfer(t, alice, content, bob)
	if err := s.CreateTransfer(ctx, tr); err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), content...)
	tampered[3] ^= 1
	if _, err := s.WriteAt(ctx, tr.ID, 0, bytes.NewReader(tampered), t0); !errors.Is(err, ErrHashMismatch) {
		t.Fatal(err)
	}
	evs, err := s.UnroutedEvents(ctx, 10)
	if err != nil || len(evs) != 1 || evs[0].Kind != EventRiskAlert || evs[0].Subject != tr.ID ||
		!strings.Contains(string(evs[0].Payload), "transfer.quarantined") {
		t.Fatalf("events after a quarantine: %+v %v", evs, err)
	}
}

// testOutboxDeliveries (in the driver suite): an event is routed once; a failed attempt is due
// again later, a parked one is not due until retried, and a delivered one
// is done.
func testOutboxDeliveries(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	ev := Event{ID: "refused-1", Kind: "transfer.refused", Subject: "dec-9", Payload: json.RawMessage(`{"decision_id":"dec-9"}`)}
	for range 2 {
		if err := s.EnqueueEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EnqueueEvent(ctx, Event{Kind: "x", Subject: "y", Payload: json.RawMessage(`{`)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad payload: %v", err)
	}
	routes := []Route{{Endpoint: "webhook:soc"}, {Endpoint: "email", Target: []string{"a@example.com"}}}
	if err := s.RouteEvent(ctx, ev.ID, routes, t0); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.UnroutedEvents(ctx, 10); len(evs) != 0 {
		t.Errorf("routed event still unrouted: %+v", evs)
	}
	due, err := s.DueDeliveries(ctx, t0, 10)
	if err != nil || len(due) != 2 || due[0].Endpoint != "email" || due[0].Target[0] != "a@example.com" || due[1].Event.ID != ev.ID {
		t.Fatalf("due: %+v %v", due, err)
	}
	if err := s.DeliveryFailed(ctx, ev.ID, "webhook:soc", "503", t0.Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}
	if err := s.DeliveryFailed(ctx, ev.ID, "email", "refused", t0.Add(time.Minute), true); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueDeliveries(ctx, t0.Add(30*time.Second), 10); len(due) != 0 {
		t.Errorf("due before its time: %+v", due)
	}
	if next, ok, err := s.NextDelivery(ctx); !ok || err != nil || !next.Equal(t0.Add(time.Minute)) {
		t.Errorf("NextDelivery %v %v %v", next, ok, err)
	}
	due, _ = s.DueDeliveries(ctx, t0.Add(time.Minute), 10)
	if len(due) != 1 || due[0].Endpoint != "webhook:soc" || due[0].Attempts != 1 || due[0].LastError != "503" {
		t.Fatalf("due after backoff: %+v", due)
	}
	if err := s.DeliverySucceeded(ctx, ev.ID, "webhook:soc", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeliverySucceeded(ctx, ev.ID, "webhook:soc", t0.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("delivered twice: %v", err)
	}
	parked, err := s.Deliveries(ctx, DeliveryParked)
	if err != nil || len(parked) != 1 || parked[0].Endpoint != "email" || parked[0].LastError != "refused" {
		t.Fatalf("parked: %+v %v", parked, err)
	}
	if err := s.RetryDelivery(ctx, ev.ID, "webhook:soc", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("retrying a delivered one: %v", err)
	}
	if err := s.RetryDelivery(ctx, ev.ID, "email", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueDeliveries(ctx, t0.Add(2*time.Minute), 10)
	if len(due) != 1 || due[0].Attempts != 0 || due[0].State != DeliveryPending {
		t.Errorf("retried: %+v", due)
	}
	if _, ok, _ := s.NextDelivery(ctx); !ok {
		t.Error("no next delivery")
	}
	if n, err := s.PruneOutbox(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("pruned %d events with a delivery pending (%v)", n, err)
	}
	if err := s.DeliverySucceeded(ctx, ev.ID, "email", t0); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneOutbox(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("pruned %d recent events (%v)", n, err)
	}
	if n, err := s.PruneOutbox(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("pruned %d delivered events, want 1 (%v)", n, err)
	}
	if ds, _ := s.Deliveries(ctx, DeliveryDelivered); len(ds) != 0 {
		t.Errorf("deliveries of a pruned event remain: %+v", ds)
	}
}

// testExpiringTransfers (in the driver suite): ready transfers expiring in the window, and no others.
func testExpiringTransfers(t *testing.T, openStore func(testing.TB, string) *Store) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	var ids []string
	for _, exp := range []time.Duration{time.Hour, 48 * time.Hour, 0} {
		content := randomBytes(t, 32)
		tr := newTransfer(t, alice, content, bob)
		if exp > 0 {
			tr.Obligations = Obligations{RetentionDays: 1, ExpiresAt: t0.Add(exp)}
		}
		createUploaded(t, s, tr, content)
		ids = append(ids, tr.ID)
	}
	ts, err := s.ExpiringTransfers(ctx, t0, t0.Add(24*time.Hour))
	if err != nil || len(ts) != 1 || ts[0].ID != ids[0] || len(ts[0].Recipients) != 1 {
		t.Fatalf("expiring: %+v %v", ts, err)
	}
}
