package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
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
	// Derogations are the GDPR Art. 49 derogations recorded for the
	// matter's transfers, with their justification.
	Derogations []Derogation `json:"derogations,omitempty"`
	// ExportControl are the export licences or licence exceptions the
	// matter's export-controlled material travels under.
	ExportControl []ExportAuthorisation `json:"export_control,omitempty"`
	// ClientBAA is the client's Business Associate Agreement with the firm
	// (the client a HIPAA covered entity or business associate).
	ClientBAA *DatedRecord `json:"client_baa,omitempty"`
	// SanctionsSignoff are the compliance team's sign-offs for transfers
	// to places under restrictive measures.
	SanctionsSignoff []Signoff `json:"sanctions_signoff,omitempty"`
	// PIPLExemption is the exemption of the 2024 Provisions (Art. 5) the
	// matter's exports from China rely on: "contract", "hr" or "emergency".
	PIPLExemption string `json:"pipl_exemption,omitempty"`
	// PIPLJudicialApproval is the approval of the competent Chinese
	// authority to provide data stored in China to a foreign judicial or
	// enforcement body (PIPL Art. 41, DSL Art. 36).
	PIPLJudicialApproval *DatedRecord `json:"pipl_judicial_approval,omitempty"`
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

// Derogation is a GDPR Art. 49 derogation recorded on a matter.
type Derogation struct {
	// Article is the point of Art. 49(1) relied on, such as "49(1)(e)".
	Article string `json:"article"`
	// Justification says why it applies, for the decision and the audit log.
	Justification string `json:"justification"`
	// Countries limits it to these destinations; all when empty.
	Countries []string `json:"countries,omitempty"`
	// RecordedBy and Date say who recorded it and when.
	RecordedBy string `json:"recorded_by,omitempty"`
	Date       string `json:"date,omitempty"`
}

// ExportAuthorisation is an export licence or licence exception.
type ExportAuthorisation struct {
	// Authorisation is "licence" or "exception".
	Authorisation string `json:"authorisation"`
	// Reference identifies it (licence number, exception and its basis).
	Reference string `json:"reference"`
	// Countries it covers (destinations, and nationalities for deemed exports).
	Countries []string `json:"countries"`
	// Expires is its last day in force; empty if open-ended.
	Expires string `json:"expires,omitempty"`
}

// DatedRecord is a document on file with its dates.
type DatedRecord struct {
	Reference string `json:"reference"`
	Authority string `json:"authority,omitempty"`
	Signed    string `json:"signed,omitempty"`
	Date      string `json:"date,omitempty"`
	Expires   string `json:"expires,omitempty"`
}

// Signoff is a compliance sign-off for places under restrictive measures.
type Signoff struct {
	Reference string   `json:"reference"`
	By        string   `json:"by"`
	Date      string   `json:"date"`
	Countries []string `json:"countries"`
}

var (
	regionRE     = jurisdictionRE
	derogationRE = regexp.MustCompile(`^49\(1\)\([a-g]\)$`)
)

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
		for i, d := range m.Derogations {
			dw := fmt.Sprintf("%s: derogations[%d]", where, i)
			if !derogationRE.MatchString(d.Article) {
				bad("%s: article %q is not a point of GDPR Art. 49(1), such as \"49(1)(e)\"", dw, d.Article)
			}
			if d.Justification == "" {
				bad("%s: justification is missing: say why the derogation applies", dw)
			}
			errs = append(errs, checkCountries(dw, d.Countries)...)
		}
		for i, a := range m.ExportControl {
			aw := fmt.Sprintf("%s: export_control[%d]", where, i)
			if a.Authorisation != "licence" && a.Authorisation != "exception" {
				bad("%s: authorisation %q is not \"licence\" or \"exception\"", aw, a.Authorisation)
			}
			if a.Reference == "" || len(a.Countries) == 0 {
				bad("%s: reference and countries are required", aw)
			}
			errs = append(errs, checkCountries(aw, a.Countries)...)
			errs = append(errs, checkOptionalDay(aw, "expires", a.Expires)...)
		}
		for name, r := range map[string]*DatedRecord{"client_baa": m.ClientBAA, "pipl_judicial_approval": m.PIPLJudicialApproval} {
			if r == nil {
				continue
			}
			rw := fmt.Sprintf("%s: %s", where, name)
			if r.Reference == "" {
				bad("%s: reference is missing", rw)
			}
			for _, day := range []struct{ name, v string }{{"signed", r.Signed}, {"date", r.Date}, {"expires", r.Expires}} {
				errs = append(errs, checkOptionalDay(rw, day.name, day.v)...)
			}
		}
		for i, so := range m.SanctionsSignoff {
			sw := fmt.Sprintf("%s: sanctions_signoff[%d]", where, i)
			if so.Reference == "" || so.By == "" || len(so.Countries) == 0 {
				bad("%s: reference, by and countries are required", sw)
			}
			errs = append(errs, checkOptionalDay(sw, "date", so.Date)...)
		}
		if e := m.PIPLExemption; e != "" && e != "contract" && e != "hr" && e != "emergency" {
			bad("%s: pipl_exemption %q is not \"contract\", \"hr\" or \"emergency\" (2024 Provisions Art. 5)", where, e)
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

// checkCountries checks ISO 3166-1 alpha-2 codes.
func checkCountries(where string, cs []string) []error {
	var errs []error
	for _, c := range cs {
		if !jurisdictionRE.MatchString(c) {
			errs = append(errs, dataError("%s: country %q is not an ISO 3166-1 alpha-2 code", where, c))
		}
	}
	return errs
}

// checkOptionalDay checks a YYYY-MM-DD day that may be empty.
func checkOptionalDay(where, name, day string) []error {
	if day == "" {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return []error{dataError("%s: %s %q is not a date YYYY-MM-DD", where, name, day)}
	}
	return nil
}

// orgRecords are the fields of an organisation that only the policy reads
// (from data.data, not from the input), checked at load.
type orgRecords struct {
	Certificates []struct {
		Standard  string   `json:"standard"`
		Reference string   `json:"reference"`
		Sites     []string `json:"sites"`
		Expires   string   `json:"expires"`
	} `json:"certificates"`
	Screening *struct {
		Lists  []string `json:"lists"`
		Date   string   `json:"date"`
		Result string   `json:"result"`
	} `json:"screening"`
	PIPL *struct {
		PersonalSubjects   *int         `json:"personal_subjects"`
		SensitiveSubjects  *int         `json:"sensitive_subjects"`
		SecurityAssessment *DatedRecord `json:"security_assessment"`
	} `json:"pipl"`
	SanctionsNexus []string `json:"sanctions_nexus"`
	Nationalities  []string `json:"nationalities"`
}

// settings are data/settings.json.
type settings struct {
	TIAMaxAgeDays       *int `json:"tia_max_age_days"`
	ScreeningMaxAgeDays *int `json:"screening_max_age_days"`
}

// checkRecords checks the organisations' records, the agreements' transfer
// fields and the settings in the data documents (as loaded).
func (f *facts) checkRecords(data any) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, dataError(format, args...)) }
	d, _ := data.(map[string]any)
	orgs, _ := d["organisations"].(map[string]any)
	for _, td := range sortedKeys(orgs) {
		var r orgRecords
		b, _ := json.Marshal(orgs[td])
		if err := json.Unmarshal(b, &r); err != nil {
			bad("organisations[%q]: %v", td, err)
			continue
		}
		where := fmt.Sprintf("organisations[%q]", td)
		sites := map[string]bool{}
		for _, s := range f.Organisations[td].Sites {
			sites[s.Name] = true
		}
		for i, c := range r.Certificates {
			cw := fmt.Sprintf("%s: certificates[%d]", where, i)
			if c.Standard == "" {
				bad("%s: standard is missing (such as \"ISO 27001\")", cw)
			}
			for _, s := range c.Sites {
				if !sites[s] {
					bad("%s: site %q is not a site of %s", cw, s, td)
				}
			}
			errs = append(errs, checkOptionalDay(cw, "expires", c.Expires)...)
		}
		if s := r.Screening; s != nil {
			if _, err := time.Parse(time.DateOnly, s.Date); err != nil || s.Result == "" || len(s.Lists) == 0 {
				bad("%s: screening needs lists, a date YYYY-MM-DD and a result (\"clear\" when nothing was found)", where)
			}
		}
		if p := r.PIPL; p != nil {
			if p.PersonalSubjects == nil || *p.PersonalSubjects < 0 || p.SensitiveSubjects != nil && *p.SensitiveSubjects < 0 {
				bad("%s: pipl needs personal_subjects (people whose personal information was exported since 1 January), not negative", where)
			}
			if a := p.SecurityAssessment; a != nil {
				errs = append(errs, checkOptionalDay(where+": pipl.security_assessment", "date", a.Date)...)
				errs = append(errs, checkOptionalDay(where+": pipl.security_assessment", "expires", a.Expires)...)
			}
		}
		for _, n := range r.SanctionsNexus {
			if n != "EU" && n != "US" && n != "UK" {
				bad("%s: sanctions_nexus %q is not one of EU, US, UK", where, n)
			}
		}
		errs = append(errs, checkCountries(where+": nationalities", r.Nationalities)...)
	}
	roles := map[string]bool{"controller": true, "processor": true, "sub-processor": true}
	for i, a := range f.Agreements {
		where := fmt.Sprintf("agreements[%d] (%s %v)", i, a.Kind, a.Parties)
		for _, td := range sortedKeys(a.Roles) {
			if !slices.Contains(a.Parties, td) {
				bad("%s: roles names %q, which is not a party", where, td)
			}
			if !roles[a.Roles[td]] {
				bad("%s: role %q is not controller, processor or sub-processor", where, a.Roles[td])
			}
		}
		if a.Module != 0 && (a.Kind != "SCC" || a.Module < 1 || a.Module > 4) {
			bad("%s: module %d: only SCCs have modules, 1 to 4", where, a.Module)
		}
		if c := a.Covers; c != nil {
			errs = append(errs, checkCountries(where+": covers", c.Countries)...)
		}
		if t := a.TIA; t != nil {
			if _, err := time.Parse(time.DateOnly, t.Date); err != nil || t.Reference == "" {
				bad("%s: tia needs a reference and a date YYYY-MM-DD", where)
			}
		}
	}
	if s, ok := d["settings"]; ok {
		var st settings
		b, _ := json.Marshal(s)
		if err := json.Unmarshal(b, &st); err != nil {
			bad("settings: %v", err)
		} else {
			for _, n := range []struct {
				name string
				v    *int
			}{{"tia_max_age_days", st.TIAMaxAgeDays}, {"screening_max_age_days", st.ScreeningMaxAgeDays}} {
				if n.v != nil && *n.v <= 0 {
					bad("settings: %s is %d: give a positive number of days", n.name, *n.v)
				}
			}
		}
	}
	return errs
}

// MatterHeld reports whether the matter registry of the policy set in use
// records a legal hold on matter. The retention sweeper asks it before it
// deletes a transfer, beside the holds placed at run time. With no policy
// set loaded, or a registry entry it cannot read, it reports true: a
// sweeper that cannot tell must not delete.
func (e *Engine) MatterHeld(matter string) bool {
	p := e.current.Load()
	if p == nil || p.store == nil {
		return true
	}
	if p.store.matters == nil {
		return false // no registry: nothing is held by it
	}
	b, ok := p.store.matters.member(matter)
	if !ok {
		return false
	}
	var m struct {
		LegalHold *LegalHold `json:"legal_hold"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return true
	}
	return m.LegalHold != nil && m.LegalHold.Held
}
