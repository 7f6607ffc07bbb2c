package policy

import "github.com/open-policy-agent/opa/v1/ast"

// AdminRequest is the subject of an admin-plane operation (issue 16), sent
// with action "admin": the policy's admin rules decide who may do it.
type AdminRequest struct {
	// Op is the operation: "revoke", "unrevoke", "list_revocations",
	// "quarantine", "release" or "list_quarantines".
	Op string `json:"op"`
	// Target is the SPIFFE ID revoked or unrevoked; for a quarantine or a
	// release, the identity whose transfers are picked, if any.
	Target string `json:"target,omitempty"`
	// Transfer and Matter pick transfers for a quarantine or a release.
	Transfer string `json:"transfer,omitempty"`
	Matter   string `json:"matter,omitempty"`
	// Reason is the admin's stated reason.
	Reason string `json:"reason,omitempty"`
}

// adminValue is a as an OPA value, the value of its JSON form.
func adminValue(a AdminRequest) *ast.Term {
	o := ast.NewObject(field("op", jsonString(a.Op)))
	optString(nil, o, "target", a.Target)
	optString(nil, o, "transfer", a.Transfer)
	optString(nil, o, "matter", a.Matter)
	optString(nil, o, "reason", a.Reason)
	return ast.NewTerm(o)
}
