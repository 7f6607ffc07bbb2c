package policy

import (
	"bytes"
	"encoding/json"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Risk is the gateway's statistical assessment of a request (issue 16):
// named signals measured against the source identity's own baseline
// (package risk) and their score. input.risk_score carries the same Score.
type Risk struct {
	// Score is 0 (nothing unusual) to 100.
	Score int `json:"score"`
	// Signals are volume_z and count_z (z-scores of the day's bytes and
	// sends), new_recipient_org (1 or 0), off_hours (the share of past
	// sends in this hour), refusal_burst (refusals in the last hour) and
	// download_burst (downloads in the last ten minutes).
	Signals []RiskSignal `json:"signals"`
}

// RiskSignal is one named measure, and whether it is unusual.
type RiskSignal struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Flagged bool    `json:"flagged"`
}

// riskValue is r as an OPA value, the value of its JSON form.
func riskValue(r Risk) *ast.Term {
	b, err := json.Marshal(r)
	if err != nil {
		return ast.NullTerm()
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return ast.NullTerm()
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		return ast.NullTerm()
	}
	return ast.NewTerm(v)
}
