package api

// PathAuditBodies serves the bodies of the private audit entries to which the
// caller's organisation is a party (issue 16):
//
//	GET /v1/audit/bodies?size=N   JSON lines of audit.Body {index, salt, body}, entries below N
//
// The log's tiles (PathLog) hold only commitments for these entries; a body
// opens its entry's commitment, so lex checks each one against the tree it
// verified.
const PathAuditBodies = "/v1/audit/bodies"

// AuditBody is one line of PathAuditBodies: a private entry's body (the
// event's canonical JSON) and the salt that, with it, opens the commitment
// at Index (audit.Body).
type AuditBody struct {
	Index uint64 `json:"index"`
	Salt  []byte `json:"salt"`
	Body  string `json:"body"`
}
