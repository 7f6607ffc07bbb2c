package policy

import (
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// InputVersion is the version of the [Input] document this package sends.
// It changes only when a field changes meaning or disappears; new fields
// may be added within a version.
const InputVersion = 1

// Input is the document a policy decides on, available in Rego as `input`.
// It is a versioned contract: security teams write policies against it.
// Its JSON form is documented field by field in policies/README.md.
type Input struct {
	// Version is the version of this document, InputVersion. Zero is sent
	// as InputVersion.
	Version int `json:"version"`

	// Action is what the source asks to do: "send", "receive",
	// "register_key", "lookup_key", "list_inbox", "ack", "sftp_login",
	// "admin", "explain", or one of the matter actions
	// "matter_request_recipient", "matter_approve_recipient",
	// "legal_hold_place", "legal_hold_lift" (with Request) and
	// "fetch_certificate".
	Action string `json:"action"`

	// Time is when the request was made, by the gateway's clock. Policies
	// read the time from here, never from the host, so a decision can be
	// replayed. Sent as RFC 3339 with nanoseconds.
	Time time.Time `json:"time"`

	// Source is the authenticated party making the request.
	Source Party `json:"source"`

	// Destinations are the counterparties of the action: the recipients of
	// a send; for receive and ack, the sender of the transfer. Empty for
	// actions without a counterparty.
	Destinations []Party `json:"destinations,omitempty"`

	// Bundle describes the transfer for send, receive and ack; nil otherwise.
	Bundle *Bundle `json:"bundle,omitempty"`

	// MatterGrants are the recipients added to the bundle's matter at run
	// time with four-eyes approval, from the gateway's store, on send and
	// receive. The policy treats each as a permitted recipient of the
	// matter beside those of its registry entry (policies/data/matters.json).
	MatterGrants []MatterGrant `json:"matter_grants,omitempty"`

	// MatterHold is the run-time legal hold on the bundle's matter, from the
	// gateway's store; nil when there is none. (The registry's own hold
	// flag is policy data.) The gateway's sweeper is what obeys holds.
	MatterHold *MatterHold `json:"matter_hold,omitempty"`

	// Request describes the matter actions (matter_request_recipient,
	// matter_approve_recipient, legal_hold_place, legal_hold_lift); nil
	// otherwise.
	Request *Request `json:"request,omitempty"`

	// RiskScore is the gateway's risk estimate for the request, 0 (none)
	// to 100: Risk.Score (policies/risk.rego uses it).
	RiskScore int `json:"risk_score"`

	// Risk is the statistical assessment behind RiskScore, with its named
	// signals; nil when the gateway keeps no baselines. Issue 16, risk.go.
	Risk *Risk `json:"risk,omitempty"`

	// Admin describes an admin-plane operation (action "admin"); nil
	// otherwise. Issue 16, see admin.go.
	Admin *AdminRequest `json:"admin,omitempty"`
}

// Party is one SPIFFE identity taking part in an action.
type Party struct {
	// ID is the SPIFFE ID, "spiffe://trust-domain/path".
	ID string `json:"id"`

	// TrustDomain is the trust domain of ID; a trust domain is an
	// organisation. Derived from ID by the engine when empty.
	TrustDomain string `json:"trust_domain"`

	// Path is the path of ID, such as "/paralegal/alice". Derived from ID
	// by the engine when empty.
	Path string `json:"path"`

	// Organisation is filled in by the engine from the policy data,
	// whatever the caller put there; nil (absent) when the trust domain is
	// not a known organisation.
	Organisation *Organisation `json:"organisation,omitempty"`
	// Site is the organisation's site whose longest path prefix matches
	// Path, filled in by the engine; nil when none matches.
	Site *Site `json:"site,omitempty"`
	// Jurisdiction is the ISO 3166-1 alpha-2 code governing the party: its
	// site's if set, else its organisation's. Filled in by the engine.
	Jurisdiction string `json:"jurisdiction,omitempty"`
	// EUEEA reports whether Jurisdiction is in the EU/EEA, by the list in
	// the policy data. Filled in by the engine.
	EUEEA bool `json:"eu_eea"`
	// Certifications are the organisation's and the site's, sorted.
	// Filled in by the engine.
	Certifications []string `json:"certifications,omitempty"`
	// Roles are the roles the source holds (paralegal, attorney, approver,
	// records_manager, security_admin), sorted: from the people directory
	// (data/people.json, its groups mapped by roles_from_groups) and the
	// role lists of data/access.json. Filled in by the engine for the
	// source only, whatever the caller put there, so that a client cannot
	// claim a role; empty for destinations.
	Roles []string `json:"roles,omitempty"`
}

// PartyOf returns the Party of a SPIFFE ID.
func PartyOf(id spiffeid.ID) Party {
	return Party{ID: id.String(), TrustDomain: id.TrustDomain().Name(), Path: id.Path()}
}

// withNames fills TrustDomain and Path from ID when they are empty.
func (p Party) withNames() Party {
	if p.TrustDomain != "" {
		return p
	}
	rest, ok := strings.CutPrefix(p.ID, "spiffe://")
	if !ok {
		return p
	}
	td, path, _ := strings.Cut(rest, "/")
	p.TrustDomain = td
	if p.Path == "" && path != "" {
		p.Path = "/" + path
	}
	return p
}

// Organisation is what the policy data says about an organisation: the
// facts a policy decides on. All of it comes from the data files, keyed by
// trust domain.
type Organisation struct {
	// TrustDomain is the SPIFFE trust domain of the organisation.
	TrustDomain string `json:"trust_domain"`
	// Name is the organisation's legal name.
	Name string `json:"name"`
	// Kind is the kind of organisation, such as "law_firm" or "lpo".
	Kind string `json:"kind,omitempty"`
	// Jurisdiction is the ISO 3166-1 alpha-2 code of the country whose law
	// governs the organisation, such as "DE" or "PH".
	Jurisdiction string `json:"jurisdiction"`
	// EUEEA reports whether the organisation is in the EU/EEA.
	EUEEA bool `json:"eu_eea"`
	// Sites are the places where the organisation handles documents.
	Sites []Site `json:"sites,omitempty"`
	// Certifications are the organisation's certifications, such as
	// "ISO 27001".
	Certifications []string `json:"certifications,omitempty"`
	// RetentionDays is how long transfers to the organisation are kept;
	// zero means the policy's default (the data files leave it out: a 0
	// there is refused at load).
	RetentionDays int `json:"retention_days,omitempty"`
	// RetentionSeconds, when set, keeps transfers to the organisation for
	// that many seconds instead (for tests and demonstrations; the
	// shortest of the parties' and the matter's wins over days).
	RetentionSeconds int `json:"retention_seconds,omitempty"`
	// MaxDownloads limits how often a transfer to the organisation may be
	// downloaded; zero means the policy's default.
	MaxDownloads int `json:"max_downloads,omitempty"`
	// MaxBundleBytes caps the size of bundles the organisation sends or
	// receives; zero means no limit.
	MaxBundleBytes int64 `json:"max_bundle_bytes,omitempty"`
	// MaxFiles caps the file count of bundles the organisation sends or
	// receives; zero means no limit.
	MaxFiles int `json:"max_files,omitempty"`
	// Agreements are, for a destination, the organisation's agreements
	// with the source's organisation; none for the source (an
	// organisation may have thousands, and every one would be copied into
	// every decision's input and log line).
	// Whether one is in force at Input.Time is for the policy to decide.
	Agreements []Agreement `json:"agreements,omitempty"`
}

// Site is one place where an organisation handles documents. A party
// belongs to the site whose longest entry of Paths prefixes its SPIFFE path.
type Site struct {
	// Name names the site in messages, such as "Manila".
	Name string `json:"name"`
	// Paths are SPIFFE path prefixes of the site's identities, such as
	// "/site/" or "/" (every identity of the organisation).
	Paths []string `json:"paths,omitempty"`
	// Jurisdiction overrides the organisation's for the site.
	Jurisdiction string `json:"jurisdiction,omitempty"`
	// Region is the ISO 3166-2 subdivision of the site, such as "UA-43",
	// where sanctions name regions.
	Region string `json:"region,omitempty"`
	// Certifications the site holds beyond the organisation's.
	Certifications []string `json:"certifications,omitempty"`
	// BusinessHours, when set, limits when the site may send or receive.
	BusinessHours *BusinessHours `json:"business_hours,omitempty"`
}

// BusinessHours is a weekly window in a time zone.
type BusinessHours struct {
	// TimeZone is an IANA time zone name, such as "Asia/Manila".
	TimeZone string `json:"time_zone"`
	// Days are the open days: "Mon", "Tue"... "Sun".
	Days []string `json:"days"`
	// From and To are "HH:MM" local times; From is inclusive, To exclusive.
	From string `json:"from"`
	To   string `json:"to"`
}

// Agreement is a contract between two organisations.
type Agreement struct {
	// Parties are the trust domains of the two organisations.
	Parties []string `json:"parties"`
	// Kind is the kind of agreement: "NDA", "DPA", "SCC", "BCR", "BAA",
	// "IDTA", "UK-ADDENDUM", "PIPL-SCC"...
	Kind string `json:"kind"`
	// Signed is the day the agreement takes effect, YYYY-MM-DD (UTC).
	Signed string `json:"signed"`
	// Expires is the last day the agreement is in force, YYYY-MM-DD
	// (UTC); empty if it does not expire.
	Expires string `json:"expires,omitempty"`
	// Version is the instrument's version, such as "2021/914" for the EU
	// Standard Contractual Clauses of Commission Implementing Decision (EU)
	// 2021/914, or "2010/87" for the clauses it replaced.
	Version string `json:"version,omitempty"`
	// Module is the SCC module: 1 controller to controller, 2 controller to
	// processor, 3 processor to processor, 4 processor to controller.
	Module int `json:"module,omitempty"`
	// Roles are each party's role under the agreement, by trust domain:
	// "controller", "processor" or "sub-processor".
	Roles map[string]string `json:"roles,omitempty"`
	// Covers are the destinations the agreement covers; nil: the
	// importing party's own jurisdiction only.
	Covers *Coverage `json:"covers,omitempty"`
	// TIA is the transfer impact assessment the transfer relies on.
	TIA *Assessment `json:"tia,omitempty"`
}

// Coverage are the destinations a transfer instrument covers.
type Coverage struct {
	// Countries are ISO 3166-1 alpha-2 codes.
	Countries []string `json:"countries,omitempty"`
	// Sites are site names of the importing organisation.
	Sites []string `json:"sites,omitempty"`
}

// Assessment is a dated assessment on file, such as a transfer impact
// assessment (EDPB Recommendations 01/2020).
type Assessment struct {
	// Reference identifies the assessment document.
	Reference string `json:"reference"`
	// Date is the day it was completed, YYYY-MM-DD.
	Date string `json:"date"`
}

// Bundle describes the document bundle of a transfer. The gateway only
// ever sees ciphertext: these are the sender's signed declarations.
type Bundle struct {
	// Matter is the client matter the bundle belongs to.
	Matter string `json:"matter"`
	// Labels classify the contents: "privileged", "personal-data",
	// "health", "financial", "export-controlled"...
	Labels []string `json:"labels"`
	// Regions are the ISO 3166-1 alpha-2 codes of where the data subjects
	// of personal data in the bundle live.
	Regions []string `json:"data_subject_regions"`
	// Size is the PLAINTEXT size in bytes: the sum of the file sizes the
	// signed manifest declares. Limits (max_bundle_bytes) read it.
	Size int64 `json:"size"`
	// CiphertextSize is the size of the ciphertext in bytes, as stored;
	// 0 when not known yet.
	CiphertextSize int64 `json:"ciphertext_size,omitempty"`
	// Stage is when a send is decided: "declared" (before the upload, on
	// what the sender declares) or "final" (an SFTP upload decided again
	// with its real size before it is sealed); "" for other actions.
	Stage string `json:"stage,omitempty"`
	// FileCount is the number of files in the bundle.
	FileCount int `json:"file_count"`
	// ManifestHash is the hex SHA-256 of the signed manifest.
	ManifestHash string `json:"manifest_hash"`
}

// MatterGrant is a recipient added to a matter at run time: requested by
// one person and approved by another (four-eyes), recorded by the gateway.
type MatterGrant struct {
	// Recipient is a SPIFFE ID, a team prefix ending in "/", or a trust
	// domain (a whole organisation).
	Recipient string `json:"recipient"`
	// RequestedBy is the SPIFFE ID of who asked for the recipient.
	RequestedBy string `json:"requested_by"`
	// ApprovedBy is the SPIFFE ID of who approved it, never RequestedBy.
	ApprovedBy string `json:"approved_by"`
	// ApprovedAt is when it was approved.
	ApprovedAt time.Time `json:"approved_at"`
}

// MatterHold is a legal hold on a matter placed at run time.
type MatterHold struct {
	// Held reports whether the hold is in place.
	Held bool `json:"held"`
	// By is the SPIFFE ID of who placed (or lifted) it.
	By string `json:"by,omitempty"`
	// At is when it was placed (or lifted).
	At time.Time `json:"at"`
	// Reason is why, as recorded in the audit log.
	Reason string `json:"reason,omitempty"`
}

// Request is the subject of a matter action.
type Request struct {
	// Matter is the matter id of the registry.
	Matter string `json:"matter"`
	// Recipient is the recipient to add (matter_request_recipient,
	// matter_approve_recipient): a SPIFFE ID, a team prefix ending in "/"
	// or a trust domain.
	Recipient string `json:"recipient,omitempty"`
	// RequestID identifies a pending request to add a recipient.
	RequestID string `json:"request_id,omitempty"`
	// RequestedBy is the SPIFFE ID of who asked for the recipient; an
	// approval by the same identity is refused (four-eyes).
	RequestedBy string `json:"requested_by,omitempty"`
	// Reason is why, as recorded in the audit log (required to place a
	// legal hold).
	Reason string `json:"reason,omitempty"`
}
