package api

import "time"

// Admin plane endpoints (issue 16), for the identities the policy lets do
// action "admin"; each change is an audit entry:
//
//	GET  /v1/admin/revocations            the deny list, config file and run time (RevocationList)
//	POST /v1/admin/revocations            revoke a SPIFFE ID (RevokeRequest → Revocation): new handshakes
//	                                      are refused and its live connections closed at once
//	POST /v1/admin/revocations/unrevoke   lift a run-time revocation (RevokeRequest → Revocation)
//	GET  /v1/admin/quarantines            transfers an admin quarantined (QuarantineList)
//	POST /v1/admin/quarantines            quarantine transfers (QuarantineRequest → QuarantineResult)
//	POST /v1/admin/quarantines/release    release them (QuarantineRequest → QuarantineResult)
const (
	PathAdminRevocations = "/v1/admin/revocations"
	PathAdminUnrevoke    = "/v1/admin/revocations/unrevoke"
	PathAdminQuarantines = "/v1/admin/quarantines"
	PathAdminRelease     = "/v1/admin/quarantines/release"
)

// RevokeRequest names the SPIFFE ID to revoke or unrevoke, and why.
type RevokeRequest struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Revocation is one entry of the deny list.
type Revocation struct {
	ID string `json:"id"`
	// Source is "admin" (revoked at run time, lifted by unrevoke) or
	// "config" (identity.revoked in the gateway's config file).
	Source string    `json:"source"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at,omitzero"`
	Reason string    `json:"reason,omitempty"`
	// ClosedConnections is how many live connections a revoke closed.
	ClosedConnections int    `json:"closed_connections,omitempty"`
	DecisionID        string `json:"decision_id,omitempty"`
}

// RevocationList is the deny list, sorted by ID.
type RevocationList struct {
	Revocations []Revocation `json:"revocations"`
}

// QuarantineRequest picks transfers: every set field must match, at least
// one must be set. Identity picks the transfers it sent or receives; Since
// and Until bound their creation time.
type QuarantineRequest struct {
	Transfer string    `json:"transfer,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Matter   string    `json:"matter,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Until    time.Time `json:"until,omitzero"`
	Reason   string    `json:"reason"`
}

// QuarantineResult lists the transfers a quarantine or release changed.
type QuarantineResult struct {
	Transfers  []string `json:"transfers"`
	DecisionID string   `json:"decision_id,omitempty"`
}

// Quarantine is a transfer an admin quarantined: it is not delivered until
// released.
type Quarantine struct {
	Transfer string    `json:"transfer"`
	Sender   string    `json:"sender,omitempty"`
	Matter   string    `json:"matter,omitempty"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"`
}

// QuarantineList lists admin quarantines, oldest first.
type QuarantineList struct {
	Quarantines []Quarantine `json:"quarantines"`
}
