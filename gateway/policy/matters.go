package policy

import (
	"fmt"
	"strings"
	"time"
)

// Matter is a client matter of the registry (data/matters.json, at
// data.data.matters, keyed by matter id): the firm's record of what a
// matter holds and who may see it. The rules classify a bundle from its
// matter, not from what the sender declares alone.
type Matter struct {
	// Client is the client's name.
	Client string `json:"client"`
	// Owner is the trust domain of the organisation owning the matter.
	Owner string `json:"owner"`
	// Categories are the labels the matter's material always carries
	// (privileged, personal-data, health...), from the label vocabulary.
	Categories []string `json:"categories,omitempty"`
	// DataSubjectJurisdictions are the ISO 3166-1 alpha-2 codes (or "EU",
	// "EEA") of where the matter's data subjects live.
	DataSubjectJurisdictions []string `json:"data_subject_jurisdictions,omitempty"`
	// ClientConsents are the client's consents to outsourced or offshore
	// work on the matter (ABA Formal Opinion 08-451).
	ClientConsents []Consent `json:"client_consents,omitempty"`
	// PermittedRecipients are who may receive the matter's material
	// besides the owning organisation.
	PermittedRecipients Recipients `json:"permitted_recipients"`
	// SupervisingLawyer is the SPIFFE ID of the lawyer supervising the
	// matter's outsourced work.
	SupervisingLawyer string `json:"supervising_lawyer,omitempty"`
	// LegalHold is the registry's legal hold on the matter.
	LegalHold *LegalHold `json:"legal_hold,omitempty"`
	// RetentionDays, MaxDownloads and RetentionSeconds, when set, take part
	// in the obligations (the strictest wins); RetentionSeconds is for tests
	// and demonstrations and wins over days.
	RetentionDays    *int `json:"retention_days,omitempty"`
	MaxDownloads     *int `json:"max_downloads,omitempty"`
	RetentionSeconds *int `json:"retention_seconds,omitempty"`
}

// Consent is a client's consent to outsourced or offshore work.
type Consent struct {
	// Reference identifies the consent document, such as an engagement
	// letter clause.
	Reference string `json:"reference"`
	// Organisations are the trust domains of the providers it covers.
	Organisations []string `json:"organisations,omitempty"`
	// Countries are the ISO 3166-1 alpha-2 codes of the countries it covers.
	Countries []string `json:"countries,omitempty"`
	// Given is the day it takes effect, YYYY-MM-DD (UTC).
	Given string `json:"given"`
	// Expires is its last day in force, YYYY-MM-DD (UTC); empty if it
	// does not expire.
	Expires string `json:"expires,omitempty"`
}

// Recipients are the organisations and identities permitted on a matter.
type Recipients struct {
	// Organisations are trust domains: every identity of each.
	Organisations []string `json:"organisations,omitempty"`
	// Identities are SPIFFE IDs, or team prefixes ending in "/".
	Identities []string `json:"identities,omitempty"`
}

// LegalHold is a legal hold recorded in the matter registry.
type LegalHold struct {
	Held   bool   `json:"held"`
	By     string `json:"by,omitempty"`
	At     string `json:"at,omitempty"`
	Reason string `json:"reason,omitempty"`
}

var regionRE = jurisdictionRE

// checkMatters checks the matter registry, the label vocabulary and the
// roles against the organisations.
func (f *facts) checkMatters() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, dataError(format, args...)) }
	for _, l := range sortedKeys(f.Labels) {
		if l == "" || strings.TrimSpace(l) != l || strings.ToLower(l) != l {
			bad("labels: %q must be lower case without spaces around it", l)
		}
	}
	for _, role := range sortedKeys(f.Roles) {
		for _, id := range f.Roles[role] {
			if !strings.HasPrefix(id, "spiffe://") || len(id) == len("spiffe://") {
				bad("roles[%q]: %q is not a SPIFFE ID or team prefix (ending in /)", role, id)
			}
		}
	}
	for _, id := range sortedKeys(f.Matters) {
		m := f.Matters[id]
		where := fmt.Sprintf("matters[%q]", id)
		if strings.TrimSpace(id) == "" || strings.TrimSpace(id) != id {
			bad("matters: the matter id %q is empty or has spaces around it", id)
		}
		if m.Client == "" {
			bad("%s: client is missing", where)
		}
		if _, ok := f.Organisations[m.Owner]; !ok {
			bad("%s: owner %q is not in organisations", where, m.Owner)
		}
		for _, c := range m.Categories {
			if _, ok := f.Labels[c]; !ok {
				bad("%s: category %q is not in the label vocabulary (labels, data/labels.json)", where, c)
			}
		}
		for _, j := range m.DataSubjectJurisdictions {
			if !regionRE.MatchString(j) && j != "EU" && j != "EEA" {
				bad("%s: data-subject jurisdiction %q is not an ISO 3166-1 alpha-2 code, \"EU\" or \"EEA\"", where, j)
			}
		}
		for i, c := range m.ClientConsents {
			cw := fmt.Sprintf("%s: client_consents[%d]", where, i)
			if c.Reference == "" {
				bad("%s: reference is missing (the consent document)", cw)
			}
			if len(c.Organisations)+len(c.Countries) == 0 {
				bad("%s: covers nothing: give organisations and/or countries", cw)
			}
			for _, o := range c.Organisations {
				if _, ok := f.Organisations[o]; !ok {
					bad("%s: organisation %q is not in organisations", cw, o)
				}
			}
			for _, j := range c.Countries {
				if !regionRE.MatchString(j) {
					bad("%s: country %q is not an ISO 3166-1 alpha-2 code", cw, j)
				}
			}
			errs = append(errs, checkPeriod(cw, "given", c.Given, c.Expires)...)
		}
		for _, o := range m.PermittedRecipients.Organisations {
			if _, ok := f.Organisations[o]; !ok {
				bad("%s: permitted recipient organisation %q is not in organisations", where, o)
			}
		}
		for _, e := range m.PermittedRecipients.Identities {
			if !strings.HasPrefix(e, "spiffe://") || len(e) == len("spiffe://") {
				bad("%s: permitted recipient %q is not a SPIFFE ID or team prefix (ending in /)", where, e)
			}
		}
		if m.SupervisingLawyer != "" && !strings.HasPrefix(m.SupervisingLawyer, "spiffe://") {
			bad("%s: supervising_lawyer %q is not a SPIFFE ID", where, m.SupervisingLawyer)
		}
		if h := m.LegalHold; h != nil && h.Held {
			if h.By == "" || h.Reason == "" {
				bad("%s: legal_hold is held but by or reason is missing: record who placed it and why", where)
			}
			if _, err := time.Parse(time.RFC3339, h.At); err != nil {
				bad("%s: legal_hold at %q is not an RFC 3339 time", where, h.At)
			}
		}
		for _, n := range []struct {
			name string
			v    *int
		}{{"retention_days", m.RetentionDays}, {"max_downloads", m.MaxDownloads}, {"retention_seconds", m.RetentionSeconds}} {
			if n.v != nil && *n.v <= 0 {
				bad("%s: %s is %d: give a positive number, or leave it out", where, n.name, *n.v)
			}
		}
	}
	return errs
}

// checkPeriod checks a from/until pair of days, YYYY-MM-DD; until may be empty.
func checkPeriod(where, fromName, from, until string) []error {
	var errs []error
	start, err := time.Parse(time.DateOnly, from)
	if err != nil {
		errs = append(errs, dataError("%s: %s %q is not a date YYYY-MM-DD", where, fromName, from))
	}
	if until == "" {
		return errs
	}
	end, err2 := time.Parse(time.DateOnly, until)
	if err2 != nil {
		errs = append(errs, dataError("%s: expires %q is not a date YYYY-MM-DD", where, until))
	} else if err == nil && end.Before(start) {
		errs = append(errs, dataError("%s: expires %s is before %s %s", where, until, fromName, from))
	}
	return errs
}
