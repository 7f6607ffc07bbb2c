package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/lexgate/lexgate/gateway/store"
)

// Payload is the body of an outbox event, as the store's triggers and the
// core write it: who, what, which matter and decision. It never holds file
// names: the gateway knows them only inside the signed manifest, which no
// notification reads.
type Payload struct {
	TransferID  string   `json:"transfer_id,omitempty"`
	RequestID   string   `json:"request_id,omitempty"`
	DecisionID  string   `json:"decision_id,omitempty"`
	Sender      string   `json:"sender,omitempty"`
	Actor       string   `json:"actor,omitempty"`
	RequestedBy string   `json:"requested_by,omitempty"`
	Matter      string   `json:"matter,omitempty"`
	Recipients  []string `json:"recipients,omitempty"`
	ExpiresAt   int64    `json:"expires_at,omitempty"` // Unix nanoseconds; 0: none
	Reasons     []Reason `json:"reasons,omitempty"`
}

// Reason is one reason of a refusal, as the policy gave it.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func parsePayload(ev store.Event) (Payload, error) {
	var p Payload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return p, fmt.Errorf("notify: event %s: payload: %w", ev.ID, err)
	}
	return p, nil
}

// Expires is ExpiresAt as a time, zero when none.
func (p Payload) Expires() time.Time {
	if p.ExpiresAt == 0 {
		return time.Time{}
	}
	return time.Unix(0, p.ExpiresAt).UTC()
}

// owner is the identity whose organisation decides what notifications
// about the event may carry: the sender of a transfer, else the actor.
func (p Payload) owner() string {
	if p.Sender != "" {
		return p.Sender
	}
	return p.Actor
}

// mailTo lists who is mailed about an event: identities (looked up in the
// directory) and groups.
func mailTo(kind string, p Payload) (ids []string, groups []string) {
	switch kind {
	case store.EventTransferReady:
		return p.Recipients, nil
	case store.EventTransferReceived, store.EventTransferAcknowledged:
		return []string{p.Sender}, nil
	case store.EventTransferExpiring:
		return append(slices.Clone(p.Recipients), p.Sender), nil
	case store.EventTransferRefused:
		return []string{p.Sender}, []string{"security"}
	case store.EventRiskAlert:
		return nil, []string{"security"}
	case store.EventApprovalRequested:
		return nil, []string{"approvers"}
	case store.EventApprovalGranted:
		return []string{p.RequestedBy}, nil
	case store.EventHoldPlaced, store.EventHoldLifted:
		return nil, []string{"records"}
	}
	return nil, nil
}

// addresses resolves mailTo through the directory, each address once.
func addresses(d *Directory, kind string, p Payload) []string {
	ids, groups := mailTo(kind, p)
	var out []string
	add := func(a string) {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, id := range ids {
		add(d.Address(id))
	}
	for _, g := range groups {
		for _, a := range d.Group(g) {
			add(a)
		}
	}
	return out
}

func subscribed(events []string, kind string) bool {
	return len(events) == 0 || slices.Contains(events, kind)
}
