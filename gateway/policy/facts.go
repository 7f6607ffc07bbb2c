package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// facts are the organisations and agreements of the policy data, at
// data.data.organisations and data.data.agreements (the files in the
// data/ directory of a policy set).
type facts struct {
	Organisations map[string]Organisation `json:"organisations"`
	Agreements    []Agreement             `json:"agreements"`
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
		if o.Name == "" {
			bad("organisations[%q]: name is missing", td)
		}
		if !jurisdictionRE.MatchString(o.Jurisdiction) {
			bad("organisations[%q]: jurisdiction %q is not an ISO 3166-1 alpha-2 code such as \"DE\"", td, o.Jurisdiction)
		}
		if o.RetentionDays < 0 || o.MaxDownloads < 0 {
			bad("organisations[%q]: retention_days and max_downloads cannot be negative", td)
		}
	}
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
	return f, nil
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
	in.Source = in.Source.withNames()
	in.Source.Organisation = f.organisation(in.Source.TrustDomain, "")
	if in.Destinations != nil {
		dests := make([]Party, len(in.Destinations))
		for i, p := range in.Destinations {
			p = p.withNames()
			p.Organisation = f.organisation(p.TrustDomain, in.Source.TrustDomain)
			dests[i] = p
		}
		in.Destinations = dests
	}
	return in
}

// organisation returns a copy of the organisation of td with its
// agreements with other (all of them if other is empty), or nil.
func (f *facts) organisation(td, other string) *Organisation {
	o, ok := f.Organisations[td]
	if !ok || td == "" {
		return nil
	}
	o.TrustDomain = td
	o.Sites = slices.Clone(o.Sites)
	o.Certifications = slices.Clone(o.Certifications)
	o.Agreements = nil
	for _, a := range f.Agreements {
		if slices.Contains(a.Parties, td) && (other == "" || slices.Contains(a.Parties, other)) {
			a.Parties = slices.Clone(a.Parties)
			o.Agreements = append(o.Agreements, a)
		}
	}
	return &o
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
