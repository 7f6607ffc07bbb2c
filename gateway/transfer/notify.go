package transfer

import (
	"context"
	"encoding/json"

	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
)

// refusalPayload is the outbox payload of a refused send (issue 21): who,
// to whom, which matter, the decision and its reasons. No file names.
type refusalPayload struct {
	DecisionID string          `json:"decision_id"`
	Sender     string          `json:"sender"`
	Recipients []string        `json:"recipients,omitempty"`
	Matter     string          `json:"matter,omitempty"`
	Reasons    []policy.Reason `json:"reasons"`
}

// queueRefusal queues the notification of a refused send, after its audit
// entry. The refusal stands whether or not the event could be queued.
func (s *Service) queueRefusal(ctx context.Context, in policy.Input, d policy.Decision) {
	if in.Action != "send" || d.ID == "" {
		return
	}
	p := refusalPayload{DecisionID: d.ID, Sender: in.Source.ID, Reasons: d.Reasons}
	for _, r := range in.Destinations {
		p.Recipients = append(p.Recipients, r.ID)
	}
	if in.Bundle != nil {
		p.Matter = in.Bundle.Matter
	}
	b, err := json.Marshal(p)
	if err == nil {
		err = s.store.EnqueueEvent(context.WithoutCancel(ctx), store.Event{ID: "refused-" + d.ID,
			Kind: store.EventTransferRefused, Subject: d.ID, Payload: b})
	}
	if err != nil {
		s.log.ErrorContext(ctx, "notify: refusal not queued", "decision_id", d.ID, "err", err)
	}
}
