package policy

import (
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputValue is in as an OPA value: exactly the value of its JSON form (the
// form policies/README.md documents, with encoding/json's omitempty and
// null rules), built directly. Going through JSON text cost a tenth of a
// decision. TestInputValueIsItsJSON holds the two forms equal.
func inputValue(in Input) ast.Value {
	o := ast.NewObject(
		field("version", ast.InternedTerm(in.Version)),
		field("action", jsonString(in.Action)),
		field("time", jsonString(jsonTime(in.Time))),
		field("source", ast.NewTerm(partyValue(nil, in.Source))),
		field("risk_score", ast.InternedTerm(in.RiskScore)),
	)
	if len(in.Destinations) > 0 {
		ts := make([]*ast.Term, len(in.Destinations))
		for i, p := range in.Destinations {
			ts[i] = ast.NewTerm(partyValue(nil, p))
		}
		o.Insert(key("destinations"), ast.ArrayTerm(ts...))
	}
	if b := in.Bundle; b != nil {
		o.Insert(key("bundle"), bundleValue(nil, *b))
	}
	for _, f := range matterFields(nil, in) {
		o.Insert(f[0], f[1])
	}
	if a := in.Admin; a != nil {
		o.Insert(key("admin"), adminValue(*a))
	}
	if r := in.Risk; r != nil {
		o.Insert(key("risk"), riskValue(*r))
	}
	return o
}

func bundleValue(c *terms, b Bundle) *ast.Term {
	o := ast.NewObject(
		field("matter", c.str(b.Matter)),
		field("labels", stringList(c, b.Labels)),
		field("data_subject_regions", stringList(c, b.Regions)),
		field("size", ast.IntNumberTerm(int(b.Size))),
		field("file_count", ast.InternedTerm(b.FileCount)),
		field("manifest_hash", jsonString(b.ManifestHash)),
	)
	optInt(o, "ciphertext_size", b.CiphertextSize)
	optString(c, o, "stage", b.Stage)
	return ast.NewTerm(o)
}

// matterFields are the fields of in about matters (matter_grants,
// matter_hold, request), those that are set.
func matterFields(c *terms, in Input) [][2]*ast.Term {
	var out [][2]*ast.Term
	if len(in.MatterGrants) > 0 {
		ts := make([]*ast.Term, len(in.MatterGrants))
		for i, g := range in.MatterGrants {
			ts[i] = ast.ObjectTerm(
				field("recipient", c.str(g.Recipient)),
				field("requested_by", c.str(g.RequestedBy)),
				field("approved_by", c.str(g.ApprovedBy)),
				field("approved_at", jsonString(jsonTime(g.ApprovedAt))),
			)
		}
		out = append(out, field("matter_grants", ast.ArrayTerm(ts...)))
	}
	if h := in.MatterHold; h != nil {
		o := ast.NewObject(field("held", ast.InternedTerm(h.Held)), field("at", jsonString(jsonTime(h.At))))
		optString(c, o, "by", h.By)
		optString(c, o, "reason", h.Reason)
		out = append(out, field("matter_hold", ast.NewTerm(o)))
	}
	if r := in.Request; r != nil {
		o := ast.NewObject(field("matter", c.str(r.Matter)))
		optString(c, o, "recipient", r.Recipient)
		optString(c, o, "request_id", r.RequestID)
		optString(c, o, "requested_by", r.RequestedBy)
		optString(c, o, "reason", r.Reason)
		out = append(out, field("request", ast.NewTerm(o)))
	}
	return out
}

func partyValue(c *terms, p Party) ast.Value {
	o := ast.NewObject(
		field("id", jsonString(p.ID)),
		field("trust_domain", jsonString(p.TrustDomain)),
		field("path", jsonString(p.Path)),
		field("eu_eea", ast.InternedTerm(p.EUEEA)),
	)
	if p.Organisation != nil {
		o.Insert(key("organisation"), ast.NewTerm(organisationValue(c, *p.Organisation)))
	}
	if p.Site != nil {
		o.Insert(key("site"), ast.NewTerm(siteValue(c, *p.Site)))
	}
	optString(c, o, "jurisdiction", p.Jurisdiction)
	optStrings(c, o, "certifications", p.Certifications)
	optStrings(c, o, "roles", p.Roles)
	return o
}

func organisationValue(c *terms, g Organisation) ast.Value {
	o := ast.NewObject(
		field("trust_domain", c.str(g.TrustDomain)),
		field("name", c.str(g.Name)),
		field("jurisdiction", c.str(g.Jurisdiction)),
		field("eu_eea", ast.InternedTerm(g.EUEEA)),
	)
	optString(c, o, "kind", g.Kind)
	if len(g.Sites) > 0 {
		ts := make([]*ast.Term, len(g.Sites))
		for i, s := range g.Sites {
			ts[i] = ast.NewTerm(siteValue(c, s))
		}
		o.Insert(key("sites"), ast.ArrayTerm(ts...))
	}
	optStrings(c, o, "certifications", g.Certifications)
	optInt(o, "retention_days", int64(g.RetentionDays))
	optInt(o, "retention_seconds", int64(g.RetentionSeconds))
	optInt(o, "max_downloads", int64(g.MaxDownloads))
	optInt(o, "max_bundle_bytes", g.MaxBundleBytes)
	optInt(o, "max_files", int64(g.MaxFiles))
	if len(g.Agreements) > 0 {
		ts := make([]*ast.Term, len(g.Agreements))
		for i, a := range g.Agreements {
			ts[i] = ast.NewTerm(agreementValue(c, a))
		}
		o.Insert(key("agreements"), ast.ArrayTerm(ts...))
	}
	return o
}

func agreementValue(c *terms, a Agreement) ast.Value {
	ag := ast.NewObject(
		field("parties", stringList(c, a.Parties)),
		field("kind", c.str(a.Kind)),
		field("signed", c.str(a.Signed)),
	)
	optString(c, ag, "expires", a.Expires)
	optString(c, ag, "version", a.Version)
	optInt(ag, "module", int64(a.Module))
	if len(a.Roles) > 0 {
		roles := ast.NewObject()
		for _, td := range sortedKeys(a.Roles) {
			roles.Insert(c.str(td), c.str(a.Roles[td]))
		}
		ag.Insert(key("roles"), ast.NewTerm(roles))
	}
	if v := a.Covers; v != nil {
		o := ast.NewObject()
		optStrings(c, o, "countries", v.Countries)
		optStrings(c, o, "sites", v.Sites)
		ag.Insert(key("covers"), ast.NewTerm(o))
	}
	if v := a.TIA; v != nil {
		ag.Insert(key("tia"), ast.ObjectTerm(field("reference", c.str(v.Reference)), field("date", c.str(v.Date))))
	}
	return ag
}

func siteValue(c *terms, s Site) ast.Value {
	o := ast.NewObject(field("name", c.str(s.Name)))
	optStrings(c, o, "paths", s.Paths)
	optString(c, o, "jurisdiction", s.Jurisdiction)
	optString(c, o, "region", s.Region)
	optStrings(c, o, "certifications", s.Certifications)
	if h := s.BusinessHours; h != nil {
		o.Insert(key("business_hours"), ast.ObjectTerm(
			field("time_zone", c.str(h.TimeZone)),
			field("days", stringList(c, h.Days)),
			field("from", c.str(h.From)),
			field("to", c.str(h.To)),
		))
	}
	return o
}

// terms are string terms made once and shared by the values built with
// them (OPA never changes a value it is given). A nil *terms makes new
// terms; one that no longer adds (once the cache is built, when decisions
// read it concurrently) makes new terms for the strings it lacks.
type terms struct {
	m   map[string]*ast.Term
	add bool
}

// str is s as a string term (jsonString), shared when c has it.
func (c *terms) str(s string) *ast.Term {
	if c == nil {
		return jsonString(s)
	}
	t, ok := c.m[s]
	if !ok {
		t = jsonString(s)
		if c.add {
			c.m[s] = t
		}
	}
	return t
}

// jsonString is s as a string term the way encoding/json writes it: each byte
// that is not valid UTF-8 becomes U+FFFD (found by FuzzFacts; "lex policy
// explain --local" takes parties from the command line).
func jsonString(s string) *ast.Term {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	return ast.StringTerm(s)
}

func field(k string, v *ast.Term) [2]*ast.Term { return [2]*ast.Term{key(k), v} }

// keys are the field names of the input document as terms, made once.
var keys = map[string]*ast.Term{}

func init() {
	for _, k := range []string{"version", "action", "time", "source", "risk_score", "destinations", "bundle",
		"matter", "labels", "data_subject_regions", "size", "file_count", "manifest_hash",
		"id", "trust_domain", "path", "eu_eea", "organisation", "site", "jurisdiction", "certifications",
		"name", "kind", "sites", "retention_days", "max_downloads", "max_bundle_bytes", "max_files", "agreements",
		"parties", "signed", "expires", "paths", "business_hours", "time_zone", "days", "from", "to",
		"ciphertext_size", "stage", "matter_grants", "matter_hold", "request", "recipient", "requested_by",
		"approved_by", "approved_at", "retention_seconds", "version", "module", "roles", "region", "covers", "countries", "tia", "reference", "date", "held", "at", "by", "reason", "request_id"} {
		keys[k] = ast.StringTerm(k)
	}
}

// key is k as a term, shared for the field names of the input document.
func key(k string) *ast.Term {
	if t, ok := keys[k]; ok {
		return t
	}
	return jsonString(k)
}

// stringList is a JSON list of strings; nil is null, as encoding/json has it.
func stringList(c *terms, ss []string) *ast.Term {
	if ss == nil {
		return ast.NullTerm()
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = c.str(s)
	}
	return ast.ArrayTerm(ts...)
}

// optString, optStrings and optInt add a field tagged omitempty.
func optString(c *terms, o ast.Object, k, v string) {
	if v != "" {
		o.Insert(key(k), c.str(v))
	}
}

func optStrings(c *terms, o ast.Object, k string, v []string) {
	if len(v) > 0 {
		o.Insert(key(k), stringList(c, v))
	}
}

func optInt(o ast.Object, k string, v int64) {
	if v != 0 {
		o.Insert(key(k), ast.IntNumberTerm(int(v)))
	}
}

// jsonTime is t as encoding/json writes a time.Time: RFC 3339 with
// nanoseconds, trailing zeros dropped.
func jsonTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

// valueCache holds the OPA values of the parts of enriched inputs that
// come from the policy data, made once when the data is loaded and shared
// by every input (OPA never changes a value it is given): each
// organisation, and the strings of the agreements. An agreement's value is
// made for each input that carries it (a few per decision): made once for
// each of 10,000 agreements, they were 200,000 heap objects for the garbage
// collector to mark on every cycle.
type valueCache struct {
	orgs    map[string]*orgValue
	strings *terms
}

// orgValue is an organisation as it appears in an enriched input.
type orgValue struct {
	value  *ast.Term      // without agreements: the source's organisation
	fields [][2]*ast.Term // the fields of value, to add agreements to
	td     *ast.Term      // its trust domain
	sites  []*ast.Term    // by index in Organisation.Sites
	// certifications are those of a party of the organisation at each site,
	// at index 1+site (0: at none of its sites); nil when it holds none.
	certifications []*ast.Term
}

func newValueCache(f *facts) *valueCache {
	c := &valueCache{orgs: make(map[string]*orgValue, len(f.Organisations)), strings: &terms{m: map[string]*ast.Term{}, add: true}}
	lists := map[string]*ast.Term{}
	for td := range f.Organisations {
		o := f.organisation(td, "")
		v := &orgValue{value: ast.NewTerm(organisationValue(c.strings, *o)), sites: make([]*ast.Term, len(o.Sites)),
			td: c.strings.str(td), certifications: make([]*ast.Term, len(o.Sites)+1)}
		v.value.Value.(ast.Object).Foreach(func(k, x *ast.Term) { v.fields = append(v.fields, [2]*ast.Term{k, x}) })
		// The sites of the organisation's value, shared (made again, they
		// were some 10,000 heap objects more for 1,000 organisations).
		if len(o.Sites) > 0 {
			sites := v.value.Value.(ast.Object).Get(key("sites")).Value.(*ast.Array) // organisationValue's
			for i := range o.Sites {
				v.sites[i] = sites.Elem(i)
			}
		}
		for i := range v.certifications {
			j, certs := placeOf(o, i-1)
			c.strings.str(j)
			if len(certs) > 0 {
				// One list for each distinct set of certifications: most
				// organisations hold the same one or two.
				k := strings.Join(certs, "\x00")
				if lists[k] == nil {
					lists[k] = stringList(c.strings, certs)
				}
				v.certifications[i] = lists[k]
			}
		}
		c.orgs[td] = v
	}
	// The strings agreements share (parties, kinds, days, roles, covered
	// places); not those of one agreement alone, such as its assessment's
	// reference: made once each, 10,000 agreements' were 10,000 heap objects
	// more to mark on every collection, to spare a decision two or three.
	for _, a := range f.Agreements {
		for _, s := range [...]string{a.Kind, a.Signed, a.Expires, a.Version} {
			if s != "" {
				c.strings.str(s)
			}
		}
		for _, td := range a.Parties {
			c.strings.str(td)
		}
		for td, role := range a.Roles {
			c.strings.str(td)
			c.strings.str(role)
		}
		if a.TIA != nil {
			c.strings.str(a.TIA.Date)
		}
		if v := a.Covers; v != nil {
			for _, s := range v.Countries {
				c.strings.str(s)
			}
			for _, s := range v.Sites {
				c.strings.str(s)
			}
		}
	}
	// The field names of the matter registry and the label vocabulary: the
	// store decodes a matter with them (decodeJSON).
	jsonFieldNames(reflect.TypeFor[Matter](), func(name string) { c.strings.str(name) })
	for l := range f.Labels {
		c.strings.str(l)
	}
	// Strings that inputs repeat: actions, bundle labels, jurisdictions.
	for _, s := range []string{"send", "receive", "register_key", "lookup_key", "list_inbox", "ack", "sftp_login", "admin", "explain",
		"privileged", "personal-data", "special-category", "health", "financial", "export-controlled", "client-confidential", "GB", "UK", "EU", "EEA"} {
		c.strings.str(s)
	}
	for _, list := range []map[string]DatedEntry{f.Jurisdictions.GDPRAdequacy, f.Jurisdictions.UKAdequacy, f.Jurisdictions.CHAdequacy, f.Jurisdictions.Embargoed} {
		for j := range list {
			c.strings.str(j)
		}
	}
	for _, j := range f.Jurisdictions.EUEEA {
		c.strings.str(j)
	}
	c.strings.add = false // read by concurrent decisions from now on
	return c
}

// valueOf is inputValue(in) for an input enriched by f (f.enrich): the
// same value, built mostly of parts made when the data was loaded.
func (f *facts) valueOf(in Input) ast.Value {
	if f.values == nil {
		return inputValue(in)
	}
	fields := make([][2]*ast.Term, 5, 7)
	fields[0] = field("version", ast.InternedTerm(in.Version))
	fields[1] = field("action", f.values.strings.str(in.Action))
	fields[2] = field("time", jsonString(jsonTime(in.Time)))
	fields[3] = field("source", ast.NewTerm(f.partyValue(in.Source, "")))
	fields[4] = field("risk_score", ast.InternedTerm(in.RiskScore))
	if len(in.Destinations) > 0 {
		ts := make([]*ast.Term, len(in.Destinations))
		for i, p := range in.Destinations {
			ts[i] = ast.NewTerm(f.partyValue(p, in.Source.TrustDomain))
		}
		fields = append(fields, field("destinations", ast.ArrayTerm(ts...)))
	}
	if b := in.Bundle; b != nil {
		fields = append(fields, field("bundle", bundleValue(f.values.strings, *b)))
	}
	fields = append(fields, matterFields(f.values.strings, in)...)
	if a := in.Admin; a != nil {
		fields = append(fields, field("admin", adminValue(*a)))
	}
	if r := in.Risk; r != nil {
		fields = append(fields, field("risk", riskValue(*r)))
	}
	return ast.NewObject(fields...)
}

// partyValue is partyValue(p) for a party enriched by f, whose
// organisation carries its agreements with other.
func (f *facts) partyValue(p Party, other string) ast.Value {
	cached := f.values.orgs[p.TrustDomain]
	if p.Organisation == nil || cached == nil {
		return partyValue(nil, p)
	}
	fields := make([][2]*ast.Term, 4, 8)
	fields[0] = field("id", jsonString(p.ID))
	fields[1] = field("trust_domain", cached.td)
	fields[2] = field("path", jsonString(p.Path))
	fields[3] = field("eu_eea", ast.InternedTerm(p.EUEEA))
	org := cached.value
	if ags := f.agreementsWith(p.TrustDomain, other); len(ags) > 0 {
		ts := make([]*ast.Term, len(ags))
		for i, a := range ags {
			ts[i] = ast.NewTerm(agreementValue(f.values.strings, f.Agreements[a]))
		}
		fields := append(cached.fields[:len(cached.fields):len(cached.fields)], field("agreements", ast.ArrayTerm(ts...)))
		org = ast.ObjectTerm(fields...)
	}
	fields = append(fields, field("organisation", org))
	site := siteIndex(p.Organisation.Sites, p.Path)
	if p.Site != nil {
		fields = append(fields, field("site", cached.sites[site]))
	}
	if p.Jurisdiction != "" {
		fields = append(fields, field("jurisdiction", f.values.strings.str(p.Jurisdiction)))
	}
	if len(p.Certifications) > 0 {
		fields = append(fields, field("certifications", cached.certifications[1+site]))
	}
	if len(p.Roles) > 0 {
		fields = append(fields, field("roles", stringList(f.values.strings, p.Roles)))
	}
	return ast.NewObject(fields...)
}

// jsonFieldNames calls add with the JSON field names of struct type t and
// of the structs it holds.
func jsonFieldNames(t reflect.Type, add func(string)) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		if name, _, _ := strings.Cut(sf.Tag.Get("json"), ","); name != "" && name != "-" {
			add(name)
		}
		jsonFieldNames(sf.Type, add)
	}
}
