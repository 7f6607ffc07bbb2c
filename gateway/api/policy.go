package api

import (
	"encoding/json"
	"time"
)

// PathPolicyExplain is where a client asks what the policy would decide
// (POST an ExplainRequest, get an ExplainResponse). Nothing is stored or
// transferred. The caller may ask about its own organisation's identities;
// asking about another organisation's needs the policy's "admin" action.
const PathPolicyExplain = "/v1/policy/explain"

// ExplainRequest describes a hypothetical action for the policy to decide.
type ExplainRequest struct {
	// Action is the action to decide, "send" when empty.
	Action string `json:"action,omitempty"`
	// From is the SPIFFE ID of the acting party (the sender of a send).
	From string `json:"from"`
	// To are the SPIFFE IDs of the counterparties (the recipients of a send).
	To []string `json:"to,omitempty"`
	// Matter, Labels, Regions, Size and FileCount describe the bundle.
	Matter    string   `json:"matter,omitempty"`
	Labels    []string `json:"labels,omitempty"`
	Regions   []string `json:"data_subject_regions,omitempty"`
	Size      int64    `json:"size,omitempty"`
	FileCount int      `json:"file_count,omitempty"`
	// At is when the action would happen; the gateway's clock when zero.
	At time.Time `json:"at,omitzero"`
}

// ExplainResponse is the policy's decision on an ExplainRequest, with the
// input exactly as the policy saw it.
type ExplainResponse struct {
	DecisionID    string      `json:"decision_id"`
	Allow         bool        `json:"allow"`
	Reasons       []Reason    `json:"reasons"`
	Obligations   Obligations `json:"obligations"`
	PolicyVersion string      `json:"policy_version"`
	// Input is the policy input document (policies/README.md).
	Input json.RawMessage `json:"input"`
}

// Obligations are what the gateway enforces on an allowed transfer.
type Obligations struct {
	RetentionDays int       `json:"retention_days"`
	MaxDownloads  int       `json:"max_downloads"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
}
