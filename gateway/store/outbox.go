package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// The notification outbox (issue 21). An event is written in the same
// transaction as the fact it reports: by the schema's triggers for what the
// store itself records (a transfer ready, first downloaded, acknowledged; a
// legal hold placed or lifted; a four-eyes request made or approved), and by
// [Store.EnqueueEvent] for facts that live elsewhere (a refusal in the
// decision log, an expiry warning). A notifier routes each event once —
// [Store.RouteEvent] records one delivery per endpoint — and then works
// through [Store.DueDeliveries], recording each attempt. An event is thus
// never lost by a crash, and delivered at least once per endpoint; the
// event's ID is the idempotency key a receiver deduplicates on.

// Event kinds. The store's triggers write the first eight; the core
// enqueues refusals and the notifier expiry warnings.
const (
	EventTransferReady        = "transfer.ready"
	EventTransferReceived     = "transfer.received"
	EventTransferAcknowledged = "transfer.acknowledged"
	EventHoldPlaced           = "hold.placed"
	EventHoldLifted           = "hold.lifted"
	EventApprovalRequested    = "approval.requested"
	EventApprovalGranted      = "approval.granted"
	EventRiskAlert            = "risk.alert" // a transfer quarantined (tampering)
	EventTransferRefused      = "transfer.refused"
	EventTransferExpiring     = "transfer.expiring"
)

// Event is one queued notification event.
type Event struct {
	Seq     int64           // order of insertion, set by the store
	ID      string          // unique; made by EnqueueEvent if empty
	Kind    string          // such as "transfer.ready"
	Subject string          // the transfer, matter or request it is about
	Payload json.RawMessage // a JSON object: who, what, matter, decision id
	Created time.Time
}

// DeliveryState is where one delivery of an event to an endpoint stands.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"   // due at NextAt
	DeliveryDelivered DeliveryState = "delivered" // accepted by the endpoint
	DeliveryParked    DeliveryState = "parked"    // gave up; RetryDelivery re-queues it
)

// Route is one endpoint an event goes to, with the addresses it goes to there.
type Route struct {
	Endpoint string   // "webhook:NAME" or "email"
	Target   []string // email addresses; empty for webhooks
}

// Delivery is one event's delivery to one endpoint.
type Delivery struct {
	Event       Event
	Endpoint    string
	Target      []string
	State       DeliveryState
	Attempts    int
	NextAt      time.Time
	LastError   string
	DeliveredAt time.Time // zero until delivered
}

// EnqueueEvent queues ev. An event whose ID is already queued is kept as it
// was, so a caller may derive the ID from the fact (an expiry warning per
// transfer) and enqueue it as often as it sees the fact.
func (s *Store) EnqueueEvent(ctx context.Context, ev Event) error {
	if ev.Kind == "" || ev.Subject == "" {
		return invalidf("event: want a kind and a subject")
	}
	if ev.ID == "" {
		ev.ID = newID()
	}
	if len(ev.Payload) == 0 {
		ev.Payload = json.RawMessage("{}")
	}
	if !json.Valid(ev.Payload) {
		return invalidf("event %s: payload is not JSON", ev.ID)
	}
	if ev.Created.IsZero() {
		ev.Created = time.Now()
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO outbox_events (id, kind, subject, payload, created)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, ev.ID, ev.Kind, ev.Subject, string(ev.Payload), ev.Created.UnixNano())
		if err != nil {
			return fmt.Errorf("store: enqueue event: %w", err)
		}
		return nil
	})
}

// UnroutedEvents returns up to limit events not yet routed, oldest first.
func (s *Store) UnroutedEvents(ctx context.Context, limit int) ([]Event, error) {
	var out []Event
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, id, kind, subject, payload, created FROM outbox_events
			WHERE routed = 0 ORDER BY seq LIMIT ?`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ev Event
			var payload string
			var created int64
			if err := rows.Scan(&ev.Seq, &ev.ID, &ev.Kind, &ev.Subject, &payload, &created); err != nil {
				return err
			}
			ev.Payload, ev.Created = json.RawMessage(payload), time.Unix(0, created).UTC()
			out = append(out, ev)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: unrouted events: %w", err)
	}
	return out, nil
}

// RouteEvent records one pending delivery of event id per route, due at
// now, and marks the event routed, in one transaction: a crash routes it
// again from scratch or not at all. An event with no routes is only marked.
func (s *Store) RouteEvent(ctx context.Context, id string, routes []Route, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, r := range routes {
			target, err := json.Marshal(nonNil(r.Target))
			if err != nil {
				return fmt.Errorf("store: route event %s: %w", id, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_deliveries (event_id, endpoint, target, next_at)
				VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, id, r.Endpoint, string(target), now.UnixNano()); err != nil {
				return fmt.Errorf("store: route event %s: %w", id, err)
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE outbox_events SET routed = 1 WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("store: route event %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: event %s", ErrNotFound, id)
		}
		return nil
	})
}

const deliveryColumns = `e.seq, e.id, e.kind, e.subject, e.payload, e.created,
	d.endpoint, d.target, d.state, d.attempts, d.next_at, d.last_error, d.delivered_at`

func scanDeliveries(rows *sql.Rows) ([]Delivery, error) {
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var payload, target string
		var created, next int64
		var delivered sql.NullInt64
		if err := rows.Scan(&d.Event.Seq, &d.Event.ID, &d.Event.Kind, &d.Event.Subject, &payload, &created,
			&d.Endpoint, &target, &d.State, &d.Attempts, &next, &d.LastError, &delivered); err != nil {
			return nil, err
		}
		d.Event.Payload, d.Event.Created = json.RawMessage(payload), time.Unix(0, created).UTC()
		if err := json.Unmarshal([]byte(target), &d.Target); err != nil {
			return nil, fmt.Errorf("delivery target: %w", err)
		}
		d.NextAt = time.Unix(0, next).UTC()
		if delivered.Valid {
			d.DeliveredAt = time.Unix(0, delivered.Int64).UTC()
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DueDeliveries returns up to limit pending deliveries due at now, in the
// order their events were queued.
func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error) {
	return s.deliveries(ctx, `d.state = 'pending' AND d.next_at <= ? ORDER BY e.seq, d.endpoint LIMIT ?`, now.UnixNano(), limit)
}

// Deliveries lists the deliveries in state, oldest event first: what an
// admin looks at for parked ones.
func (s *Store) Deliveries(ctx context.Context, state DeliveryState) ([]Delivery, error) {
	return s.deliveries(ctx, `d.state = ? ORDER BY e.seq, d.endpoint`, string(state))
}

func (s *Store) deliveries(ctx context.Context, where string, args ...any) ([]Delivery, error) {
	var out []Delivery
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM outbox_deliveries d
			JOIN outbox_events e ON e.id = d.event_id WHERE `+where, args...)
		if err != nil {
			return err
		}
		out, err = scanDeliveries(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: deliveries: %w", err)
	}
	return out, nil
}

// NextDelivery reports when the earliest pending delivery is due; ok is
// false when none is pending.
func (s *Store) NextDelivery(ctx context.Context) (at time.Time, ok bool, err error) {
	var next sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT min(next_at) FROM outbox_deliveries WHERE state = 'pending'`).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("store: next delivery: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, next.Int64).UTC(), true, nil
}

// DeliverySucceeded records that the endpoint accepted the event at now.
func (s *Store) DeliverySucceeded(ctx context.Context, eventID, endpoint string, now time.Time) error {
	return s.setDelivery(ctx, eventID, endpoint, "pending", `state = 'delivered', attempts = attempts + 1, delivered_at = ?, last_error = ''`, now.UnixNano())
}

// DeliveryFailed records a failed attempt: the delivery is due again at
// next, or parked when park is true.
func (s *Store) DeliveryFailed(ctx context.Context, eventID, endpoint, reason string, next time.Time, park bool) error {
	state := DeliveryPending
	if park {
		state = DeliveryParked
	}
	return s.setDelivery(ctx, eventID, endpoint, "pending", `state = ?, attempts = attempts + 1, next_at = ?, last_error = ?`,
		string(state), next.UnixNano(), reason)
}

// RetryDelivery re-queues a parked delivery, due at now with its attempts
// counted from zero. It returns [ErrNotFound] unless the delivery is parked.
func (s *Store) RetryDelivery(ctx context.Context, eventID, endpoint string, now time.Time) error {
	return s.setDelivery(ctx, eventID, endpoint, "parked", `state = 'pending', attempts = 0, next_at = ?`, now.UnixNano())
}

// setDelivery updates the delivery of eventID to endpoint, provided it is
// in state from.
func (s *Store) setDelivery(ctx context.Context, eventID, endpoint string, from DeliveryState, set string, args ...any) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox_deliveries SET `+set+` WHERE event_id = ? AND endpoint = ? AND state = ?`,
			append(args, eventID, endpoint, string(from))...)
		if err != nil {
			return fmt.Errorf("store: delivery %s to %s: %w", eventID, endpoint, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s delivery of event %s to %s", ErrNotFound, from, eventID, endpoint)
		}
		return nil
	})
}

// PruneOutbox deletes the events queued before before whose every
// delivery is done (parked ones are kept for admins), and reports how many
// it deleted.
func (s *Store) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox_events WHERE routed = 1 AND created < ? AND NOT EXISTS
			(SELECT 1 FROM outbox_deliveries d WHERE d.event_id = outbox_events.id AND d.state <> 'delivered')`, before.UnixNano())
		if err != nil {
			return fmt.Errorf("store: prune outbox: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// ExpiringTransfers returns the ready transfers whose expiry falls in
// [now, before), for expiry warnings.
func (s *Store) ExpiringTransfers(ctx context.Context, now, before time.Time) ([]*Transfer, error) {
	return s.list(ctx, `WHERE state = 'ready' AND expires_at >= ? AND expires_at < ? ORDER BY expires_at`,
		now.UnixNano(), before.UnixNano())
}

// changes wakes waiters when a writing transaction commits.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

func (c *changes) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

func (c *changes) signal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// Changed returns a channel closed when the next writing transaction
// commits: a long poll (an inbox watch, the notifier) waits on it instead
// of polling the database.
func (s *Store) Changed() <-chan struct{} { return s.changed.wait() }

// Shared reports whether other processes may write this store: true on
// PostgreSQL, shared by replicas, whose writes [Store.Changed] does not
// see; a waiter there polls as well.
func (s *Store) Shared() bool { return s.pg != nil }
