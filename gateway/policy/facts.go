package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// facts are the organisations and agreements of the policy data, at
// data.data.organisations and data.data.agreements (the files in the
// data/ directory of a policy set).
type facts struct {
	Organisations map[string]Organisation `json:"organisations"`
	Agreements    []Agreement             `json:"agreements"`
	Jurisdictions jurisdictions           `json:"jurisdictions"`
	EthicalWalls  map[string][]string     `json:"ethical_walls"`
	Admins        []string                `json:"admins"`
	Matters       map[string]Matter       `json:"matters"`
	Labels        map[string]string       `json:"labels"`
	Roles         map[string][]string     `json:"roles"`
	// People is the directory the firm syncs from its identity provider
	// (data/people.json): organisation → SPIFFE ID or person subject →
	// person. RolesFromGroups maps, per organisation, a group to roles.
	People          map[string]map[string]Person   `json:"people"`
	RolesFromGroups map[string]map[string][]string `json:"roles_from_groups"`

	// byOrg indexes Agreements by the trust domains of their parties.
	byOrg map[string][]int

	// values are the parts of enriched inputs taken from these facts, as
	// OPA values made once (see valueOf).
	values *valueCache
}

// jurisdictions are the lists of data/jurisdictions.json.
type jurisdictions struct {
	EUEEA []string `json:"eu_eea"`
	// Each adequacy list maps a jurisdiction to the day its entry took
	// effect, or to a dated entry with its scope and source.
	GDPRAdequacy map[string]DatedEntry `json:"gdpr_adequacy"`
	UKAdequacy   map[string]DatedEntry `json:"uk_adequacy"`
	CHAdequacy   map[string]DatedEntry `json:"ch_adequacy"`
	// Embargoed maps a jurisdiction under a comprehensive embargo, whatever
	// the firm's nexus, to the day it took effect.
	Embargoed map[string]DatedEntry `json:"embargoed"`
	// Sanctions maps a regime ("EU", "US", "UK") to countries or ISO
	// 3166-2 regions and their dated entries (tier "embargo" or
	// "restricted").
	Sanctions map[string]map[string]DatedEntry `json:"sanctions"`
	// Checked is the day the lists were last checked against their
	// sources, YYYY-MM-DD.
	Checked string `json:"checked"`
}

// A DatedEntry is an entry of a jurisdiction list: in the data either a
// day (YYYY-MM-DD, in force from then on) or an object with its period,
// scope and source.
type DatedEntry struct {
	// From is the first day in force; Until the last ("": open-ended).
	From  string `json:"from"`
	Until string `json:"until,omitempty"`
	// Scope of an adequacy entry: "full", "partial" or "certified" (then
	// Requires names what the recipient must hold).
	Scope    string `json:"scope,omitempty"`
	Requires string `json:"requires,omitempty"`
	// Tier of a sanctions entry: "embargo" or "restricted".
	Tier string `json:"tier,omitempty"`
	// Source is the legal act or guidance the entry follows.
	Source string `json:"source,omitempty"`
	// day reports an entry written as a bare day.
	day bool
}

// UnmarshalJSON reads a day or an object.
func (e *DatedEntry) UnmarshalJSON(b []byte) error {
	var day string
	if json.Unmarshal(b, &day) == nil {
		*e = DatedEntry{From: day, day: true}
		return nil
	}
	type plain DatedEntry
	return json.Unmarshal(b, (*plain)(e))
}

var jurisdictionRE = regexp.MustCompile(`^[A-Z]{2}$`)

// parseFacts reads and checks the contracts data of a policy set.
func parseFacts(documents map[string]any) (*facts, []error) {
	f := &facts{}
	raw, ok := documents["data"]
	if !ok {
		return f, nil
	}
	b, err := json.Marshal(raw)
	if err == nil {
		err = json.Unmarshal(b, f)
	}
	if err != nil {
		return nil, []error{&Error{File: "data", Message: "organisations and agreements: " + err.Error()}}
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, &Error{File: "data", Message: fmt.Sprintf(format, args...)})
	}
	for _, td := range sortedKeys(f.Organisations) {
		o := f.Organisations[td]
		if td == "" {
			bad("organisations: an organisation has an empty trust domain as its key")
			continue
		}
		if o.Name == "" {
			bad("organisations[%q]: name is missing", td)
		}
		if !jurisdictionRE.MatchString(o.Jurisdiction) {
			bad("organisations[%q]: jurisdiction %q is not an ISO 3166-1 alpha-2 code such as \"DE\"", td, o.Jurisdiction)
		}
		if o.RetentionDays < 0 || o.MaxDownloads < 0 || o.MaxBundleBytes < 0 || o.MaxFiles < 0 || o.RetentionSeconds < 0 {
			bad("organisations[%q]: retention_days, retention_seconds, max_downloads, max_bundle_bytes and max_files cannot be negative", td)
		}
		for _, z := range zeroLimits(raw, td) {
			bad("organisations[%q]: %s is 0: %s", td, z, zeroLimitHint[z])
		}
		errs = append(errs, checkSites(td, o.Sites)...)
	}
	errs = append(errs, f.checkLists()...)
	errs = append(errs, f.checkMatters()...)
	errs = append(errs, f.checkPeople()...)
	errs = append(errs, f.checkRecords(raw)...)
	for i, a := range f.Agreements {
		where := fmt.Sprintf("agreements[%d] (%s %v)", i, a.Kind, a.Parties)
		if len(a.Parties) != 2 {
			bad("%s: parties must name two trust domains", where)
		}
		for _, td := range a.Parties {
			if _, ok := f.Organisations[td]; !ok {
				bad("%s: party %q is not in organisations", where, td)
			}
		}
		if a.Kind == "" {
			bad("%s: kind is missing", where)
		}
		signed, err := time.Parse(time.DateOnly, a.Signed)
		if err != nil {
			bad("%s: signed %q is not a date YYYY-MM-DD", where, a.Signed)
		}
		if a.Expires == "" {
			continue
		}
		expires, err := time.Parse(time.DateOnly, a.Expires)
		if err != nil {
			bad("%s: expires %q is not a date YYYY-MM-DD", where, a.Expires)
		} else if expires.Before(signed) {
			bad("%s: expires %s is before signed %s", where, a.Expires, a.Signed)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// The policy reads the matters from the store (data.data.matters[id]);
	// checked, they need not stay on the heap.
	f.Matters = nil
	f.intern()
	f.byOrg = map[string][]int{}
	for i, a := range f.Agreements {
		for j, td := range a.Parties {
			if j == 0 || td != a.Parties[0] {
				f.byOrg[td] = append(f.byOrg[td], i)
			}
		}
	}
	f.values = newValueCache(f)
	return f, nil
}

// intern makes the strings of the agreements (parties, kinds, dates) that
// are equal share their bytes, and packs the parts of the agreements that
// each had on its own (its parties, its transfer impact assessment, the
// strings no other agreement has) into a few shared blocks: thousands of
// agreements name a few hundred organisations and days, and each string,
// slice or pointer decoded on its own is one more heap object for the
// garbage collector to mark on every cycle (10,000 agreements were some
// 30,000). The values are unchanged.
func (f *facts) intern() {
	seen := make(map[string]string, len(f.Organisations)+64)
	for td := range f.Organisations {
		seen[td] = td
	}
	one := func(s *string) {
		if v, ok := seen[*s]; ok {
			*s = v
		} else {
			seen[*s] = *s
		}
	}
	var parties []string
	var tias []Assessment
	var unique strings.Builder
	for i := range f.Agreements {
		a := &f.Agreements[i]
		for j := range a.Parties {
			one(&a.Parties[j])
		}
		parties = append(parties, a.Parties...)
		one(&a.Kind)
		one(&a.Signed)
		one(&a.Expires)
		one(&a.Version)
		if a.TIA != nil {
			one(&a.TIA.Date)
			tias = append(tias, *a.TIA)
			unique.WriteString(a.TIA.Reference)
		}
	}
	// One block for the parties, one for the assessments, one string for
	// their references; each agreement's are slices of them.
	parties = slices.Clip(parties)
	tias = slices.Clip(tias)
	refs := unique.String()
	for i := range f.Agreements {
		a := &f.Agreements[i]
		n := len(a.Parties)
		a.Parties, parties = parties[:n:n], parties[n:]
		if a.TIA != nil {
			tia := &tias[0]
			tias = tias[1:]
			tia.Reference, refs = refs[:len(tia.Reference)], refs[len(tia.Reference):]
			a.TIA = tia
		}
	}
}

// enrich returns in with defaults applied and each party's Organisation
// filled from the facts.
func (f *facts) enrich(in Input) Input {
	if in.Version == 0 {
		in.Version = InputVersion
	}
	if in.Bundle != nil {
		b := *in.Bundle
		b.Labels = nonNil(b.Labels)
		b.Regions = nonNil(b.Regions)
		in.Bundle = &b
	}
	in.Source = f.party(in.Source, "")
	in.Source.Roles = f.rolesOf(in.Source)
	if in.Destinations != nil {
		dests := make([]Party, len(in.Destinations))
		for i, p := range in.Destinations {
			dests[i] = f.party(p, in.Source.TrustDomain)
		}
		in.Destinations = dests
	}
	return in
}

// party fills p's organisation (with its agreements with other), site,
// jurisdiction and certifications.
func (f *facts) party(p Party, other string) Party {
	p = p.withNames()
	p.Organisation = f.organisation(p.TrustDomain, other)
	p.Site, p.Jurisdiction, p.EUEEA, p.Certifications = nil, "", false, nil
	o := p.Organisation
	if o == nil {
		return p
	}
	i := siteIndex(o.Sites, p.Path)
	if i >= 0 {
		s := o.Sites[i]
		p.Site = &s
	}
	p.Jurisdiction, p.Certifications = placeOf(o, i)
	p.EUEEA = slices.Contains(f.Jurisdictions.EUEEA, p.Jurisdiction)
	return p
}

// placeOf returns the jurisdiction and the certifications (sorted, without
// duplicates) of a party of organisation o at its site i (none if -1).
func placeOf(o *Organisation, i int) (string, []string) {
	j := o.Jurisdiction
	certs := slices.Clone(o.Certifications)
	if i >= 0 {
		s := o.Sites[i]
		if s.Jurisdiction != "" {
			j = s.Jurisdiction
		}
		certs = append(certs, s.Certifications...)
	}
	slices.Sort(certs)
	return j, slices.Compact(certs)
}

// siteIndex returns the index of the site whose longest path prefix
// matches path, -1 if none does.
func siteIndex(sites []Site, path string) int {
	best, n := -1, -1
	for i := range sites {
		for _, pre := range sites[i].Paths {
			if strings.HasPrefix(path, pre) && len(pre) > n {
				best, n = i, len(pre)
			}
		}
	}
	return best
}

// organisation returns a copy of the organisation of td with its
// agreements with other (none if other is empty), or nil.
func (f *facts) organisation(td, other string) *Organisation {
	o, ok := f.Organisations[td]
	if !ok || td == "" {
		return nil
	}
	o.TrustDomain = td
	o.EUEEA = o.EUEEA || slices.Contains(f.Jurisdictions.EUEEA, o.Jurisdiction)
	o.Sites = slices.Clone(o.Sites)
	o.Certifications = slices.Clone(o.Certifications)
	o.Agreements = nil
	for _, i := range f.agreementsWith(td, other) {
		a := f.Agreements[i]
		a.Parties = slices.Clone(a.Parties)
		o.Agreements = append(o.Agreements, a)
	}
	return &o
}

// agreementsWith returns the indexes in Agreements of the agreements
// between trust domains td and other (with td == other, those whose two
// parties are td: an intra-group BCR), none if other is empty.
func (f *facts) agreementsWith(td, other string) []int {
	if other == "" {
		return nil
	}
	var out []int
	for _, i := range f.byOrg[td] {
		if p := f.Agreements[i].Parties; p[0] == td && p[1] == other || p[0] == other && p[1] == td {
			out = append(out, i)
		}
	}
	return out
}

// zeroLimitHint says, for each organisation setting where 0 would be
// ambiguous, what to write instead. The policy reads a 0 as it is (a bundle
// limit of 0 bytes refuses every send, a retention of 0 days expires a
// transfer at once), while the Go types read it as "not set": so a 0 is
// refused when the data is loaded, and the setting is left out instead.
var zeroLimitHint = map[string]string{
	"retention_days":    "give a number of days, or leave it out for the policy's default (30)",
	"max_downloads":     "give a number of downloads, or leave it out for the policy's default (5)",
	"retention_seconds": "give a number of seconds, or leave it out to keep transfers for retention_days",
	"max_bundle_bytes":  "give a positive number of bytes, or leave it out for no limit",
	"max_files":         "give a positive number of files, or leave it out for no limit",
}

// zeroLimits lists the settings of organisation td that the data
// documents (as loaded) set to 0, in a fixed order.
func zeroLimits(data any, td string) []string {
	d, _ := data.(map[string]any)
	orgs, _ := d["organisations"].(map[string]any)
	o, _ := orgs[td].(map[string]any)
	var zero []string
	for _, k := range []string{"retention_days", "retention_seconds", "max_downloads", "max_bundle_bytes", "max_files"} {
		if v, ok := o[k]; ok && isZero(v) {
			zero = append(zero, k)
		}
	}
	return zero
}

// isZero holds for a number that is 0, as OPA's loader (json.Number) or
// encoding/json (float64) decodes it.
func isZero(v any) bool {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return err == nil && f == 0
	case float64:
		return n == 0
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// nonNil returns s, or an empty slice for nil: policies see [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
