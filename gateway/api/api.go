// Package api holds lexgate's wire types: the JSON documents and HTTP paths that the
// gateway and the lex CLI exchange, and the signed transfer manifest.
//
// # Versioning
//
// Every path starts with /v1. Fields may be added to a v1 document; none is removed
// or changes meaning. A breaking change gets a new prefix.
//
// # Endpoints
//
//	PUT  /v1/keys                      register the caller's own age recipients (KeysRequest)
//	GET  /v1/keys?id=SPIFFE_ID         look up an identity's recipients (KeysResponse)
//	POST /v1/transfers                 create a transfer from a SignedManifest (CreateTransferRequest → Transfer)
//	GET  /v1/transfers/{id}            a transfer's metadata (sender or recipient only)
//	DELETE /v1/transfers/{id}          cancel an upload in progress, deleting what arrived (sender)
//	HEAD /v1/transfers/{id}/content    the durable upload offset, in the Upload-Offset header (sender)
//	PATCH /v1/transfers/{id}/content   append ciphertext at Upload-Offset (sender); replies with the new offset
//	GET  /v1/transfers/{id}/content    download ciphertext, HTTP Range supported (recipient, ready transfers)
//	POST /v1/transfers/{id}/seal       seal a streamed transfer with its final SignedManifest (SealRequest → Transfer)
//	POST /v1/transfers/{id}/ack        acknowledge receipt (recipient)
//	GET  /v1/inbox                     ready transfers addressed to the caller (InboxResponse)
//	GET  /v1/transfers/{id}/receipt    the caller's audit receipt: the sender's upload completion, a recipient's ack
//	GET  /v1/log/checkpoint, /v1/log/tile/…  the audit log, read-only, in the tlog-tiles layout
//
// The caller is always the SPIFFE ID of its verified client certificate: no header or
// field names the caller. A transfer that is not addressed to the caller, or that the
// caller did not send, answers 404 exactly as one that does not exist, so transfer IDs
// cannot be probed. Errors come back as an Error document.
package api

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Paths of the v1 API. {id} stands for a transfer ID.
const (
	PathKeys      = "/v1/keys"
	PathTransfers = "/v1/transfers"
	PathInbox     = "/v1/inbox"
	// PathLog is where the audit log is served in the tlog-tiles layout.
	PathLog = "/v1/log/"
	// PathTransfer is the prefix of one transfer's resources: PathTransfer + id,
	// + id + "/content", + id + "/ack".
	PathTransfer = "/v1/transfers/"
)

// HeaderUploadOffset carries the byte offset of an upload: in a PATCH request, where
// the body's first byte belongs; in replies to HEAD and PATCH, how many bytes the
// gateway holds durably.
const HeaderUploadOffset = "Upload-Offset"

// ContentTypeChunk is the media type of a PATCH body: raw ciphertext bytes.
const ContentTypeChunk = "application/offset+octet-stream"

// KeysRequest registers age recipients for the caller's own SPIFFE ID, replacing
// any earlier registration.
type KeysRequest struct {
	// Recipients are age recipient strings: "age1pq1…" (hybrid post-quantum) or "age1…" (X25519).
	Recipients []string `json:"recipients"`
	// Registration is the owner's signature over Recipients (issue 16);
	// lex register always sends it, and lex send refuses keys without it.
	Registration *SignedRegistration `json:"registration,omitempty"`
}

// KeysResponse is an identity's registered age recipients.
type KeysResponse struct {
	ID         string    `json:"id"`
	Recipients []string  `json:"recipients"`
	Updated    time.Time `json:"updated"`
	// LogReceipt is the audit log receipt (package audit's Receipt) of the
	// identity's latest key registration: lex checks that Recipients are the keys
	// it records before encrypting to them (key transparency).
	LogReceipt json.RawMessage `json:"log_receipt,omitempty"`
	// Registration is the signed registration of Recipients, if the
	// identity registered them with one.
	Registration *SignedRegistration `json:"registration,omitempty"`
}

// CreateTransferRequest asks the gateway to accept a transfer. The gateway verifies the
// manifest's signature and asks its policy; a refusal is an Error with code
// CodeDenied and the policy's reasons. Sending the same signed manifest again returns
// the existing transfer, so an interrupted send resumes from its Offset.
type CreateTransferRequest struct {
	Manifest SignedManifest `json:"manifest"`
}

// SealRequest completes a streamed transfer: one created from a manifest whose
// ciphertext_sha256 was still pending (empty), so that the sender could upload
// while it encrypted. Once every byte is uploaded the sender signs the final
// manifest, identical to the one the policy decided on except that it now
// carries the ciphertext's SHA-256. The gateway checks that, and that the hash
// matches what it received; a mismatch quarantines the transfer. Only a sealed
// transfer is ever delivered, and recipients verify the final manifest.
type SealRequest struct {
	Manifest SignedManifest `json:"manifest"`
}

// Transfer states.
const (
	StateUploading    = "uploading"
	StateReady        = "ready"
	StateQuarantined  = "quarantined"
	StateAcknowledged = "acknowledged"
)

// Transfer is a transfer as the gateway shows it to its sender or a recipient.
type Transfer struct {
	ID               string    `json:"id"`
	Sender           string    `json:"sender"`
	Recipients       []string  `json:"recipients"`
	Matter           string    `json:"matter"`
	Labels           []string  `json:"labels,omitempty"`
	FileCount        int       `json:"file_count"`
	PlaintextSize    int64     `json:"plaintext_size"`
	CiphertextSize   int64     `json:"ciphertext_size"`
	CiphertextSHA256 string    `json:"ciphertext_sha256"`
	ManifestHash     string    `json:"manifest_hash"`
	DecisionID       string    `json:"decision_id,omitempty"`
	State            string    `json:"state"`
	Offset           int64     `json:"offset"`
	Created          time.Time `json:"created"`
	Completed        time.Time `json:"completed,omitzero"`
	// Manifest is the sender's signed manifest, for the recipient to verify before
	// decrypting a byte.
	Manifest SignedManifest `json:"manifest"`
	// Obligations are those of the decision that allowed the transfer.
	Obligations *Obligations `json:"obligations,omitempty"`
	// Downloads is how many downloads the viewer (a recipient) has used.
	Downloads int `json:"downloads,omitempty"`
	// HeldPastExpiry: the transfer expired but a legal hold on its matter
	// keeps it; it is no longer delivered.
	HeldPastExpiry bool `json:"held_past_expiry,omitempty"`
}

// VerifyManifest verifies the transfer's signed manifest as SignedManifest.Verify
// does, judging the signer's certificate at the time the gateway accepted the
// signature rather than now: a signature is valid when the signer's X.509-SVID
// chained to its bundle and was within its validity when it was made, so a
// transfer stays receivable after the sender's short-lived SVID expired.
//
// The gateway verified the manifest at one of two times it records and binds in
// the audit log: Created (the transfer_created entry), for a manifest that
// opened the transfer with its ciphertext hash; Completed (the upload_complete
// entry, the sender's receipt, which carries the manifest hash), for the final
// manifest that sealed a streamed transfer. VerifyManifest judges at Created
// first, then at Completed, and returns the time that held. A certificate valid
// at neither (expired or not yet valid when the gateway accepted it) fails with
// an error wrapping ErrSignerCertNotValid.
func (t *Transfer) VerifyManifest(bundles x509bundle.Source) (Manifest, spiffeid.ID, time.Time, error) {
	times := []time.Time{t.Created}
	if !t.Completed.IsZero() && !t.Completed.Equal(t.Created) {
		times = append(times, t.Completed)
	}
	var first error
	for _, at := range times {
		if at.IsZero() {
			continue
		}
		m, id, err := t.Manifest.Verify(bundles, at)
		if err == nil {
			return m, id, at, nil
		}
		if first == nil {
			first = err
		}
		if !errors.Is(err, ErrSignerCertNotValid) {
			break // not a matter of time: judging later changes nothing
		}
	}
	if first == nil {
		first = badf("the gateway's record has no time of acceptance")
	}
	return Manifest{}, spiffeid.ID{}, time.Time{}, first
}

// InboxResponse lists the ready transfers addressed to the caller that it has not
// acknowledged, oldest first.
type InboxResponse struct {
	Transfers []Transfer `json:"transfers"`
}

// Error codes, stable for scripts. The HTTP status says the class; the code says which.
const (
	CodeBadRequest   = "bad_request"     // 400: malformed input; Message says what
	CodeDenied       = "denied"          // 403: refused by policy; see Reasons
	CodeNotFound     = "not_found"       // 404: no such resource visible to the caller
	CodeConflict     = "offset_mismatch" // 409: upload offset is not the durable offset; see Offset
	CodeTooLarge     = "too_large"       // 413: more bytes than the manifest declared, or over a limit
	CodeHashMismatch = "hash_mismatch"   // 422: the upload is complete but its SHA-256 differs; quarantined
	CodeNotReady     = "not_ready"       // 409: the transfer's upload is not complete
	CodeUnavailable  = "unavailable"     // 503: shutting down or overloaded; retry
	CodeInternal     = "internal"        // 500
)

// Reason is one reason of a policy decision: a stable code and a message a paralegal understands.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is the body of every non-2xx reply.
type Error struct {
	Code       string   `json:"code"`
	Message    string   `json:"message"`
	DecisionID string   `json:"decision_id,omitempty"`
	Reasons    []Reason `json:"reasons,omitempty"`
	// Offset is the durable upload offset, with CodeConflict.
	Offset int64 `json:"offset,omitempty"`
	// RequestID identifies the request in the gateway's logs.
	RequestID string `json:"request_id,omitempty"`
}

// Error implements error, so a client can return the document itself.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	for _, r := range e.Reasons {
		s += "\n  - " + r.Message + " [" + r.Code + "]"
	}
	return s
}
