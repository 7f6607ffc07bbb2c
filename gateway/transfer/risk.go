package transfer

import (
	"context"
	"log/slog"
	"slices"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/risk"
)

// Risk signals (issue 16): every decision's input carries the source's
// statistical assessment (input.risk, input.risk_score); what the core
// audits feeds the baselines. A score at or above riskAlertAt is an alert:
// a WARN log line, a metric (Deps.RiskAlert) and an audit entry.

// riskAlertAt is the score from which an assessment is an alert.
const riskAlertAt = 50

// assessRisk fills in.Risk and in.RiskScore from the baselines.
func (s *Service) assessRisk(in *policy.Input) *risk.Risk {
	if s.risk == nil || in.Risk != nil {
		return nil
	}
	req := risk.Request{ID: in.Source.ID, Action: in.Action, Time: in.Time}
	if b := in.Bundle; b != nil {
		req.Bytes = b.CiphertextSize
		if req.Bytes == 0 {
			req.Bytes = b.Size
		}
	}
	for _, d := range in.Destinations {
		td := d.TrustDomain
		if td == "" {
			if id, err := spiffeid.FromString(d.ID); err == nil {
				td = id.TrustDomain().Name()
			}
		}
		if td != "" && !slices.Contains(req.Orgs, td) {
			req.Orgs = append(req.Orgs, td)
		}
	}
	r := s.risk.Assess(req)
	in.RiskScore = r.Score
	in.Risk = &policy.Risk{Score: r.Score}
	for _, sg := range r.Signals {
		in.Risk.Signals = append(in.Risk.Signals, policy.RiskSignal{Name: sg.Name, Value: sg.Value, Flagged: sg.Flagged})
	}
	return &r
}

// riskAlert raises an alert for an assessment at or above riskAlertAt.
func (s *Service) riskAlert(ctx context.Context, in policy.Input, r *risk.Risk, d policy.Decision) {
	if r == nil || r.Score < riskAlertAt {
		return
	}
	s.log.WarnContext(ctx, "risk alert: unusual activity for this identity (statistics against its own baseline)",
		slog.String("id", in.Source.ID), slog.String("action", in.Action), slog.Int("score", r.Score),
		slog.String("signals", r.Flagged()), slog.Bool("allowed", d.Allow), slog.String("decision_id", d.ID))
	if s.onRiskAlert != nil {
		s.onRiskAlert()
	}
	ev := inputEvent(audit.KindRiskAlert, in)
	ev.Decision, ev.Detail = auditDecision(d, d.Allow), "score "+itoa(r.Score)+": "+r.Flagged()
	s.Audit(ctx, ev) // the decision's own entry is what fails closed
}

// observeRisk feeds an audited event into the baselines.
func (s *Service) observeRisk(ev audit.Event) {
	if s.risk == nil {
		return
	}
	at := ev.Time
	if at.IsZero() {
		at = s.now()
	}
	switch {
	case ev.Kind == audit.KindTransferCreated:
		var orgs []string
		for _, r := range ev.Recipients {
			if id, err := spiffeid.FromString(r); err == nil && !slices.Contains(orgs, id.TrustDomain().Name()) {
				orgs = append(orgs, id.TrustDomain().Name())
			}
		}
		s.risk.Sent(ev.Actor, at, ev.CiphertextSize, orgs)
	case ev.Kind == audit.KindDelivery:
		s.risk.Downloaded(ev.Actor, at)
	case ev.Decision != nil && !ev.Decision.Allow && ev.Kind != audit.KindRiskAlert:
		s.risk.Refused(ev.Actor, at)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
