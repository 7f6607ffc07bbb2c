package transfer

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/policy"
)

// enricher shows the input as the policy sees it; *policy.Engine is one.
type enricher interface {
	Enrich(in policy.Input) policy.Input
}

var _ enricher = (*policy.Engine)(nil)

// Explain answers what the policy would decide for req, without doing
// anything. The caller may ask about identities of its own organisation
// (the policy's "explain" action) or, as an administrator (its "admin"
// action), about anyone. A refusal of the question itself is a
// *DeniedError; a refusal of the hypothetical action is the answer.
func (s *Service) Explain(ctx context.Context, caller spiffeid.ID, req api.ExplainRequest) (api.ExplainResponse, error) {
	var out api.ExplainResponse
	from, err := spiffeid.FromString(req.From)
	if err != nil {
		return out, badRequest("from %q: %v", req.From, err)
	}
	to, err := parties(req.To)
	if err != nil {
		return out, err
	}
	gate := "explain"
	if from.TrustDomain() != caller.TrustDomain() {
		gate = "admin"
	}
	if err := s.checkCaller(ctx, caller, gate); err != nil {
		return out, err
	}
	if _, err := s.decide(ctx, policy.Input{Action: gate, Source: party(caller)}); err != nil {
		return out, err
	}
	in := policy.Input{Version: policy.InputVersion, Action: req.Action, Time: req.At.UTC(), Source: party(from), Destinations: to,
		Bundle: &policy.Bundle{Matter: req.Matter, Labels: req.Labels, Regions: req.Regions, Size: req.Size, FileCount: req.FileCount}}
	if in.Action == "" {
		in.Action = "send"
	}
	if req.At.IsZero() {
		in.Time = s.now().UTC()
	}
	d, derr := s.policy.Decide(policy.Hypothetical(ctx), in) // a refusal is the answer, not an error
	if e, ok := s.policy.(enricher); ok {
		in = e.Enrich(in)
	}
	if out.Input, err = json.Marshal(in); err != nil {
		return out, fmt.Errorf("transfer: explain: %w", err)
	}
	if derr != nil {
		s.log.ErrorContext(ctx, "policy evaluation failed", "action", "explain", "err", derr)
	}
	out.DecisionID, out.Allow, out.PolicyVersion = d.ID, d.Allow, d.PolicyVersion
	out.Reasons = []api.Reason{}
	for _, r := range d.Reasons {
		out.Reasons = append(out.Reasons, api.Reason{Code: r.Code, Message: r.Message})
	}
	out.Obligations = api.Obligations{RetentionDays: d.Obligations.RetentionDays, MaxDownloads: d.Obligations.MaxDownloads, ExpiresAt: d.Obligations.ExpiresAt}
	return out, nil
}
