package policy

import "time"

// Reason codes set by this package rather than by the policy. The codes of
// the default policy are listed in policies/README.md.
const (
	// CodeUndefined: the policy gave no decision, or a malformed one.
	CodeUndefined = "policy.undefined"
	// CodeError: the policy could not be evaluated.
	CodeError = "policy.error"
	// CodeTimeout: the policy did not decide within Config.Timeout.
	CodeTimeout = "policy.timeout"
)

// Decision is the answer to one [Input].
type Decision struct {
	// ID identifies the decision in logs and in the audit trail.
	ID string `json:"id"`
	// Allow reports whether the action may proceed.
	Allow bool `json:"allow"`
	// Reasons explain a refusal, in words meant for the person refused.
	// A refusal always has at least one reason.
	Reasons []Reason `json:"reasons"`
	// Obligations are what the gateway must enforce on an allowed transfer;
	// zero for a refusal (the library does not work them out then).
	Obligations Obligations `json:"obligations"`
	// Notes are facts an allowed decision rests on that the audit trail
	// should show, such as a GDPR Art. 49 derogation recorded on the
	// matter (code gdpr.art49_derogation); none when absent.
	Notes []Reason `json:"notes,omitempty"`
	// PolicyVersion identifies the policy set that decided, as
	// "sha256:" and a prefix of the hash of its files.
	PolicyVersion string `json:"policy_version"`
}

// Codes returns the codes of d's reasons, in order.
func (d Decision) Codes() []string {
	codes := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		codes[i] = r.Code
	}
	return codes
}

// Reason is one explanation of a decision.
type Reason struct {
	// Code is stable and meant for programs, such as "hipaa.no_baa".
	Code string `json:"code"`
	// Message is meant for people, such as "manila-lpo.example has no
	// agreement in force with harbor-law.example: the NDA expired on
	// 2026-03-31".
	Message string `json:"message"`
}

// Obligations are the conditions attached to an allowed transfer.
type Obligations struct {
	// RetentionDays is how long the gateway keeps the transfer.
	RetentionDays int `json:"retention_days"`
	// MaxDownloads is how many times each recipient may download it.
	MaxDownloads int `json:"max_downloads"`
	// ExpiresAt is when the gateway deletes the transfer.
	ExpiresAt time.Time `json:"expires_at"`
}
