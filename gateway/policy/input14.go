package policy

import (
	"encoding/json"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// MatterGrant is a recipient added to a matter by a four-eyes approval.
type MatterGrant struct {
	// Recipient is a SPIFFE ID or a trust domain.
	Recipient   string    `json:"recipient"`
	ApprovedBy  string    `json:"approved_by"`
	RequestedBy string    `json:"requested_by"`
	ApprovedAt  time.Time `json:"approved_at"`
}

// MatterHold is a run-time legal hold on a matter.
type MatterHold struct {
	Held   bool      `json:"held"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Request is the subject of a matter request action.
type Request struct {
	Matter      string `json:"matter"`
	Recipient   string `json:"recipient"`
	RequestID   string `json:"request_id"`
	RequestedBy string `json:"requested_by"`
	Reason      string `json:"reason"`
}

// extraFields are the input's matter fields as OPA values: rare enough to
// build from their JSON.
func extraFields(in Input) [][2]*ast.Term {
	var out [][2]*ast.Term
	add := func(k string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			return
		}
		var x any
		if json.Unmarshal(b, &x) != nil {
			return
		}
		val, err := ast.InterfaceToValue(x)
		if err != nil {
			return
		}
		out = append(out, field(k, ast.NewTerm(val)))
	}
	if len(in.MatterGrants) > 0 {
		add("matter_grants", in.MatterGrants)
	}
	if in.MatterHold != nil {
		add("matter_hold", in.MatterHold)
	}
	if in.Request != nil {
		add("request", in.Request)
	}
	if in.Admin != nil {
		add("admin", in.Admin)
	}
	return out
}
