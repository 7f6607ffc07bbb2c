package api

import (
	"encoding/json"
	"time"
)

// Governance endpoints (issue 14):
//
//	GET  /v1/transfers/{id}/certificate   a destroyed transfer's destruction certificate (its sender and recipients)
//	POST /v1/matters/requests             ask to add a recipient to a matter (MatterRequestCreate → MatterRequest)
//	GET  /v1/matters/requests             pending requests of the caller's organisation (MatterRequestList)
//	POST /v1/matters/requests/{id}/approve  approve one: a second person, never the requester (→ MatterRequest)
//	POST /v1/holds                        place a legal hold on a matter (HoldRequest → Hold)
//	POST /v1/holds/{matter}/lift          lift it (HoldRequest with the reason → Hold)
//	GET  /v1/holds                        holds placed by the caller's organisation, with what they keep (HoldList)
const (
	PathMatterRequests = "/v1/matters/requests"
	PathHolds          = "/v1/holds"
)

// MatterRequestCreate asks to add Recipient (a SPIFFE ID or a trust domain) to Matter.
type MatterRequestCreate struct {
	Matter    string `json:"matter"`
	Recipient string `json:"recipient"`
	Reason    string `json:"reason"`
}

// MatterRequest is a four-eyes request: pending until approved by a second person.
type MatterRequest struct {
	ID          string    `json:"id"`
	Matter      string    `json:"matter"`
	Recipient   string    `json:"recipient"`
	RequestedBy string    `json:"requested_by"`
	Reason      string    `json:"reason"`
	Created     time.Time `json:"created"`
	ApprovedBy  string    `json:"approved_by,omitempty"`
	ApprovedAt  time.Time `json:"approved_at,omitzero"`
	DecisionID  string    `json:"decision_id,omitempty"`
}

// MatterRequestList lists pending requests, oldest first.
type MatterRequestList struct {
	Requests []MatterRequest `json:"requests"`
}

// HoldRequest places or lifts a legal hold; Matter is ignored on lift (it is in the path).
type HoldRequest struct {
	Matter string `json:"matter,omitempty"`
	Reason string `json:"reason"`
}

// Hold is a legal hold on a matter, with the transfers it keeps past their expiry.
type Hold struct {
	Matter     string    `json:"matter"`
	By         string    `json:"by"`
	At         time.Time `json:"at"`
	Reason     string    `json:"reason"`
	DecisionID string    `json:"decision_id,omitempty"`
	// HeldPastExpiry are the matter's transfers past their expiry that the
	// hold keeps from deletion.
	HeldPastExpiry []HeldTransfer `json:"held_past_expiry,omitempty"`
}

// HeldTransfer is a transfer kept past its expiry by a legal hold.
type HeldTransfer struct {
	ID        string    `json:"id"`
	Sender    string    `json:"sender"`
	ExpiresAt time.Time `json:"expires_at"`
}

// HoldList lists legal holds by matter.
type HoldList struct {
	Holds []Hold `json:"holds"`
}

// Certificate is a destruction certificate document (package audit's
// Certificate), passed through as JSON: lex saves it and verifies it offline.
type Certificate = json.RawMessage
