package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
)

// A delivery in progress stops when its transfer may no longer be delivered:
// quarantined by an admin, quarantined after a failed check, or destroyed.
// Open refuses such a transfer; a download already under way is cut at its
// next read, so that a quarantine of a misdirected send stops the bytes
// still going out, not only the next request:
//
//   - on the replica that took the quarantine or the destruction, at once
//     (the Service's registry of open deliveries);
//   - on the other replicas of a cluster, within deliveryRecheck: every
//     delivery asks the store again at its first read after that long.
//
// The recipient's client sees its download end early; its next request is
// refused with the reason (transfer.quarantined) and audited.

// deliveryRecheck is how often a delivery in progress re-reads its
// transfer's state from the store.
const deliveryRecheck = time.Second

// liveDeliveries are the open deliveries of this process, by transfer.
type liveDeliveries struct {
	mu sync.Mutex
	m  map[string]map[*Delivery]struct{}
}

func (l *liveDeliveries) add(d *Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]map[*Delivery]struct{})
	}
	if l.m[d.id] == nil {
		l.m[d.id] = make(map[*Delivery]struct{})
	}
	l.m[d.id][d] = struct{}{}
}

func (l *liveDeliveries) remove(d *Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m[d.id], d)
	if len(l.m[d.id]) == 0 {
		delete(l.m, d.id)
	}
}

// cut stops every open delivery of transfer id with err and reports how
// many there were.
func (l *liveDeliveries) cut(id string, err error) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for d := range l.m[id] {
		d.cutWith(err)
	}
	return len(l.m[id])
}

// deliveryGuard is what a Delivery needs to know whether it may go on.
type deliveryGuard struct {
	ctx   context.Context
	check func(ctx context.Context) error // nil: never re-checked
	next  atomic.Int64                    // unix nanoseconds of the next check
	cut   atomic.Pointer[error]
}

// cutWith makes every later read of d fail with err (the first cause wins).
func (d *Delivery) cutWith(err error) {
	d.guard.cut.CompareAndSwap(nil, &err)
}

// mayGoOn reports why d must stop, if it must: cut by this process, or
// found no longer deliverable by the periodic re-check. One concurrent
// reader runs the check; the others go on meanwhile.
func (d *Delivery) mayGoOn() error {
	g := &d.guard
	if p := g.cut.Load(); p != nil {
		return *p
	}
	if g.check == nil {
		return nil
	}
	now := time.Now().UnixNano()
	next := g.next.Load()
	if now < next || !g.next.CompareAndSwap(next, now+int64(deliveryRecheck)) {
		return nil
	}
	if err := g.check(g.ctx); err != nil {
		d.cutWith(err)
		return err
	}
	return nil
}

// quarantinedDuring is the cause given to a delivery cut by a quarantine.
func quarantinedDuring(id string) error {
	return &DeniedError{Action: "receive", Decision: policy.Decision{Reasons: []policy.Reason{{Code: "transfer.quarantined",
		Message: "transfer " + id + " was quarantined during the download; it is delivered once released"}}}}
}

// stillDeliverable is the re-check of a delivery of transfer id: the
// transfer must still be ready and not quarantined by an admin. A store
// that cannot answer stops the delivery too (fail closed; the client
// resumes once it can).
func (s *Service) stillDeliverable(id string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		q, err := s.store.AdminQuarantined(ctx, id)
		if err != nil {
			return fmt.Errorf("transfer: delivery of %s stopped: %w", id, err)
		}
		if q {
			return quarantinedDuring(id)
		}
		t, err := s.store.Transfer(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("transfer: delivery of %s stopped: %w", id, err)
		}
		switch t.State {
		case store.StateReady:
			return nil
		case store.StateQuarantined:
			return quarantinedDuring(id)
		default:
			return ErrNotFound // destroyed or withdrawn
		}
	}
}
