package policy

import (
	"fmt"
	"strings"
	"time"
)

// dataError is a problem in the policy data, which has no line numbers
// once merged.
func dataError(format string, args ...any) error {
	return &Error{File: "data", Message: fmt.Sprintf(format, args...)}
}

var weekdays = map[string]bool{"Mon": true, "Tue": true, "Wed": true, "Thu": true, "Fri": true, "Sat": true, "Sun": true}

// checkSites checks the sites of the organisation td: names, SPIFFE path
// prefixes that no two sites share, jurisdictions and business hours.
func checkSites(td string, sites []Site) []error {
	var errs []error
	seen := map[string]string{}
	for i, s := range sites {
		where := fmt.Sprintf("organisations[%q].sites[%d]", td, i)
		if s.Name == "" {
			errs = append(errs, dataError("%s: name is missing", where))
		}
		for _, p := range s.Paths {
			if !strings.HasPrefix(p, "/") {
				errs = append(errs, dataError("%s: path %q must start with /", where, p))
			}
			if other, dup := seen[p]; dup {
				errs = append(errs, dataError("%s: path %q is also the path of site %q", where, p, other))
			}
			seen[p] = s.Name
		}
		if s.Jurisdiction != "" && !jurisdictionRE.MatchString(s.Jurisdiction) {
			errs = append(errs, dataError("%s: jurisdiction %q is not an ISO 3166-1 alpha-2 code", where, s.Jurisdiction))
		}
		if h := s.BusinessHours; h != nil {
			errs = append(errs, checkHours(where+".business_hours", *h)...)
		}
	}
	return errs
}

// checkHours checks a business-hours window.
func checkHours(where string, h BusinessHours) []error {
	var errs []error
	if _, err := time.LoadLocation(h.TimeZone); err != nil || h.TimeZone == "" {
		errs = append(errs, dataError("%s: time_zone %q is not an IANA time zone such as \"Asia/Manila\"", where, h.TimeZone))
	}
	if len(h.Days) == 0 {
		errs = append(errs, dataError("%s: days is empty", where))
	}
	for _, d := range h.Days {
		if !weekdays[d] {
			errs = append(errs, dataError("%s: day %q is not one of Mon Tue Wed Thu Fri Sat Sun", where, d))
		}
	}
	from, err1 := time.Parse("15:04", h.From)
	to, err2 := time.Parse("15:04", h.To)
	if err1 != nil || err2 != nil || len(h.From) != 5 || len(h.To) != 5 {
		errs = append(errs, dataError("%s: from %q and to %q must be HH:MM", where, h.From, h.To))
	} else if !from.Before(to) {
		errs = append(errs, dataError("%s: from %s is not before to %s", where, h.From, h.To))
	}
	return errs
}

// checkLists checks the jurisdiction lists, the ethical walls and the admins.
func (f *facts) checkLists() []error {
	var errs []error
	j := f.Jurisdictions
	for _, c := range j.EUEEA {
		if !jurisdictionRE.MatchString(c) {
			errs = append(errs, dataError("jurisdictions.eu_eea: %q is not an ISO 3166-1 alpha-2 code", c))
		}
	}
	lists := map[string]map[string]string{"gdpr_adequacy": j.GDPRAdequacy, "uk_adequacy": j.UKAdequacy, "ch_adequacy": j.CHAdequacy, "embargoed": j.Embargoed}
	for _, name := range sortedKeys(lists) {
		for _, c := range sortedKeys(lists[name]) {
			if !jurisdictionRE.MatchString(c) {
				errs = append(errs, dataError("jurisdictions.%s: %q is not an ISO 3166-1 alpha-2 code", name, c))
			}
			if _, err := time.Parse(time.DateOnly, lists[name][c]); err != nil {
				errs = append(errs, dataError("jurisdictions.%s[%q]: %q is not a date YYYY-MM-DD", name, c, lists[name][c]))
			}
		}
	}
	for _, m := range sortedKeys(f.EthicalWalls) {
		for _, e := range f.EthicalWalls[m] {
			if !strings.HasPrefix(e, "spiffe://") || len(e) == len("spiffe://") {
				errs = append(errs, dataError("ethical_walls[%q]: %q is not a SPIFFE ID, team prefix (ending in /) or spiffe://trust-domain", m, e))
			}
		}
	}
	for _, a := range f.Admins {
		if !strings.HasPrefix(a, "spiffe://") {
			errs = append(errs, dataError("admins: %q is not a SPIFFE ID", a))
		}
	}
	return errs
}
