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
//
// The baselines live in the store (Risk in storage.go), shared by the
// replicas of a cluster. When the source's baseline cannot be read the
// decision is refused with risk.unavailable: a request is never judged as
// if its identity had no history. An observation the store refuses is kept
// by the tracker and recorded with the next one.

// riskAlertAt is the score from which an assessment is an alert.
const riskAlertAt = 50

// riskUnavailableCode is the reason code of a refusal for want of the
// source's baseline.
const riskUnavailableCode = "risk.unavailable"

// riskUnavailable is the refusal of a request whose source's baseline could
// not be read.
func riskUnavailable() policy.Decision {
	return policy.Decision{Reasons: []policy.Reason{{Code: riskUnavailableCode,
		Message: "the risk baseline of this identity could not be read from the store; the gateway refuses until it can (retry later)"}}}
}

// assessRisk fills in.Risk and in.RiskScore from the baselines. An error
// means the assessment is unknown: the caller refuses.
func (s *Service) assessRisk(ctx context.Context, in *policy.Input) (*risk.Risk, error) {
	if s.risk == nil || in.Risk != nil {
		return nil, nil
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
	r, err := s.risk.Assess(ctx, req)
	if err != nil {
		return nil, err
	}
	in.RiskScore = r.Score
	in.Risk = &policy.Risk{Score: r.Score}
	for _, sg := range r.Signals {
		in.Risk.Signals = append(in.Risk.Signals, policy.RiskSignal{Name: sg.Name, Value: sg.Value, Flagged: sg.Flagged})
	}
	return &r, nil
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

// observeRisk feeds an audited event into the baselines. The fact is
// committed and logged already, so a failure is logged, not returned: the
// tracker keeps the observation and records it with the next one.
func (s *Service) observeRisk(ctx context.Context, ev audit.Event) {
	if s.risk == nil {
		return
	}
	at := ev.Time
	if at.IsZero() {
		at = s.now()
	}
	var err error
	switch {
	case ev.Kind == audit.KindTransferCreated:
		var orgs []string
		for _, r := range ev.Recipients {
			if id, err := spiffeid.FromString(r); err == nil && !slices.Contains(orgs, id.TrustDomain().Name()) {
				orgs = append(orgs, id.TrustDomain().Name())
			}
		}
		err = s.risk.Sent(ctx, ev.Actor, at, ev.CiphertextSize, orgs)
	case ev.Kind == audit.KindDelivery:
		err = s.risk.Downloaded(ctx, ev.Actor, at)
	case ev.Decision != nil && !ev.Decision.Allow && ev.Kind != audit.KindRiskAlert &&
		!slices.Contains(ev.Decision.Reasons, riskUnavailableCode):
		// A refusal for want of the baseline is the gateway's, not the
		// identity's: it does not count towards a refusal burst.
		err = s.risk.Refused(ctx, ev.Actor, at)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "risk: an observation could not be recorded in the baselines; it is retried with the next one",
			slog.String("id", ev.Actor), slog.String("kind", string(ev.Kind)), slog.Any("err", err))
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
