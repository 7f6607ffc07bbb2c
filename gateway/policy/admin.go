package policy

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
