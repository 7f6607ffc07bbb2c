package policy

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
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
		if s.Region != "" && (!placeRE.MatchString(s.Region) || len(s.Region) < 4) {
			errs = append(errs, dataError("%s: region %q is not an ISO 3166-2 code such as \"UA-43\"", where, s.Region))
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
	lists := map[string]map[string]DatedEntry{"gdpr_adequacy": j.GDPRAdequacy, "uk_adequacy": j.UKAdequacy, "ch_adequacy": j.CHAdequacy, "embargoed": j.Embargoed}
	for _, name := range sortedKeys(lists) {
		for _, c := range sortedKeys(lists[name]) {
			if !jurisdictionRE.MatchString(c) {
				errs = append(errs, dataError("jurisdictions.%s: %q is not an ISO 3166-1 alpha-2 code", name, c))
			}
			errs = append(errs, checkEntry(fmt.Sprintf("jurisdictions.%s[%q]", name, c), lists[name][c], name != "embargoed")...)
		}
	}
	for _, regime := range sortedKeys(j.Sanctions) {
		if regime != "EU" && regime != "US" && regime != "UK" {
			errs = append(errs, dataError("jurisdictions.sanctions: regime %q is not one of EU, US, UK", regime))
		}
		for _, place := range sortedKeys(j.Sanctions[regime]) {
			where := fmt.Sprintf("jurisdictions.sanctions[%q][%q]", regime, place)
			if !placeRE.MatchString(place) {
				errs = append(errs, dataError("%s: %q is not an ISO 3166-1 alpha-2 or ISO 3166-2 code (UA-43)", where, place))
			}
			e := j.Sanctions[regime][place]
			errs = append(errs, checkEntry(where, e, false)...)
			if e.Tier != "embargo" && e.Tier != "restricted" {
				errs = append(errs, dataError("%s: tier %q is not \"embargo\" or \"restricted\"", where, e.Tier))
			}
		}
	}
	if j.Checked != "" {
		if _, err := time.Parse(time.DateOnly, j.Checked); err != nil {
			errs = append(errs, dataError("jurisdictions.checked: %q is not a date YYYY-MM-DD", j.Checked))
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

// placeRE matches an ISO 3166-1 alpha-2 code or an ISO 3166-2 subdivision.
var placeRE = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)

// checkEntry checks a dated entry of a jurisdiction list; an adequacy
// entry (adequacy) written as an object needs a scope, and "partial" and
// "certified" ones what they require.
func checkEntry(where string, e DatedEntry, adequacy bool) []error {
	var errs []error
	if e.day {
		if _, err := time.Parse(time.DateOnly, e.From); err != nil {
			errs = append(errs, dataError("%s: %q is not a date YYYY-MM-DD", where, e.From))
		}
		return errs
	}
	errs = append(errs, checkPeriod(where, "from", e.From, e.Until)...)
	if adequacy {
		switch e.Scope {
		case "full":
		case "partial", "certified":
			if e.Requires == "" {
				errs = append(errs, dataError("%s: scope %q needs requires: what the recipient must hold (a certification such as \"EU-US DPF\")", where, e.Scope))
			}
		default:
			errs = append(errs, dataError("%s: scope %q is not \"full\", \"partial\" or \"certified\"", where, e.Scope))
		}
	}
	if e.Source == "" {
		errs = append(errs, dataError("%s: source is missing: name the decision or regulation", where))
	}
	return errs
}

var (
	dataKeyRE    = regexp.MustCompile(`^(\w+)(?:\[(\d+)\])?`)
	dataQuotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// placeDataErrors points the data errors of parseFacts at the file that
// holds their top-level key (organisations, agreements...) under DIR/data/,
// and at the line of the entry they are about where it can be found: the
// quoted name in the message, or the n-th "parties" of agreements[n].
func placeDataErrors(fsys fs.FS, root string, errs []error) []error {
	files := dataFiles(fsys, root)
	for _, err := range errs {
		e, ok := err.(*Error)
		if !ok || e.File != "data" {
			continue
		}
		m := dataKeyRE.FindStringSubmatch(e.Message)
		if m == nil {
			continue
		}
		f, ok := files[m[1]]
		if !ok {
			continue
		}
		e.File = f.path
		if m[2] != "" {
			n, _ := strconv.Atoi(m[2])
			e.Line = nthLine(f.text, `"parties"`, n)
		} else if qs := dataQuotedRE.FindAllString(e.Message, 2); len(qs) > 0 {
			if e.Line = nthLine(f.text, qs[0], 0); e.Line == 0 { // YAML: unquoted
				e.Line = nthLine(f.text, strings.Trim(qs[0], `"`), 0)
			} else if len(qs) > 1 {
				// The value the message is about, within the entry named
				// first: matters["M-1"]: category "helth"...
				e.Line = lineAfter(f.text, qs[0], qs[1], e.Line)
			}
		}
	}
	return errs
}

type dataFile struct {
	path string
	text string
}

// dataFiles maps each top-level key of the data files in root/data to its file.
func dataFiles(fsys fs.FS, root string) map[string]dataFile {
	out := map[string]dataFile{}
	dir := path.Join(root, "data")
	read := func(p string) ([]byte, error) { return fs.ReadFile(fsys, p) }
	if fsys == nil {
		dir = filepath.Join(root, "data")
		read = os.ReadFile
	}
	var entries []fs.DirEntry
	if fsys == nil {
		entries, _ = os.ReadDir(dir)
	} else {
		entries, _ = fs.ReadDir(fsys, dir)
	}
	for _, d := range entries {
		name := d.Name()
		p := path.Join(dir, name)
		if fsys == nil {
			p = filepath.Join(dir, name)
		}
		b, err := read(p)
		if err != nil || d.IsDir() {
			continue
		}
		var top map[string]any
		switch path.Ext(name) {
		case ".json":
			if json.Unmarshal(b, &top) != nil {
				continue
			}
		case ".yaml", ".yml":
			top = map[string]any{}
			for _, line := range strings.Split(string(b), "\n") {
				if k, _, ok := strings.Cut(line, ":"); ok && k != "" && !strings.ContainsAny(k[:1], " \t#-") {
					top[strings.TrimSpace(k)] = true
				}
			}
		}
		for k := range top {
			out[k] = dataFile{path: p, text: string(b)}
		}
	}
	return out
}

// lineAfter is the line of the first occurrence of value after the first
// of entry in text, or line when there is none.
func lineAfter(text, entry, value string, line int) int {
	i := strings.Index(text, entry)
	if i < 0 {
		return line
	}
	j := strings.Index(text[i+len(entry):], value)
	if j < 0 {
		return line
	}
	return strings.Count(text[:i+len(entry)+j], "\n") + 1
}

// nthLine is the 1-based line of the n-th (from 0) occurrence of needle in
// text, or 0.
func nthLine(text, needle string, n int) int {
	off := 0
	for i := 0; ; i++ {
		j := strings.Index(text[off:], needle)
		if j < 0 {
			return 0
		}
		if i == n {
			return strings.Count(text[:off+j], "\n") + 1
		}
		off += j + len(needle)
	}
}
