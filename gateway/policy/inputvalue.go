package policy

import (
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
		field("source", ast.NewTerm(partyValue(in.Source))),
		field("risk_score", ast.InternedTerm(in.RiskScore)),
	)
	if len(in.Destinations) > 0 {
		ts := make([]*ast.Term, len(in.Destinations))
		for i, p := range in.Destinations {
			ts[i] = ast.NewTerm(partyValue(p))
		}
		o.Insert(jsonString("destinations"), ast.ArrayTerm(ts...))
	}
	if b := in.Bundle; b != nil {
		o.Insert(jsonString("bundle"), ast.ObjectTerm(
			field("matter", jsonString(b.Matter)),
			field("labels", stringList(b.Labels)),
			field("data_subject_regions", stringList(b.Regions)),
			field("size", ast.IntNumberTerm(int(b.Size))),
			field("file_count", ast.InternedTerm(b.FileCount)),
			field("manifest_hash", jsonString(b.ManifestHash)),
		))
	}
	return o
}

func partyValue(p Party) ast.Value {
	o := ast.NewObject(
		field("id", jsonString(p.ID)),
		field("trust_domain", jsonString(p.TrustDomain)),
		field("path", jsonString(p.Path)),
		field("eu_eea", ast.InternedTerm(p.EUEEA)),
	)
	if p.Organisation != nil {
		o.Insert(jsonString("organisation"), ast.NewTerm(organisationValue(*p.Organisation)))
	}
	if p.Site != nil {
		o.Insert(jsonString("site"), ast.NewTerm(siteValue(*p.Site)))
	}
	optString(o, "jurisdiction", p.Jurisdiction)
	optStrings(o, "certifications", p.Certifications)
	return o
}

func organisationValue(g Organisation) ast.Value {
	o := ast.NewObject(
		field("trust_domain", jsonString(g.TrustDomain)),
		field("name", jsonString(g.Name)),
		field("jurisdiction", jsonString(g.Jurisdiction)),
		field("eu_eea", ast.InternedTerm(g.EUEEA)),
	)
	optString(o, "kind", g.Kind)
	if len(g.Sites) > 0 {
		ts := make([]*ast.Term, len(g.Sites))
		for i, s := range g.Sites {
			ts[i] = ast.NewTerm(siteValue(s))
		}
		o.Insert(jsonString("sites"), ast.ArrayTerm(ts...))
	}
	optStrings(o, "certifications", g.Certifications)
	optInt(o, "retention_days", int64(g.RetentionDays))
	optInt(o, "max_downloads", int64(g.MaxDownloads))
	optInt(o, "max_bundle_bytes", g.MaxBundleBytes)
	optInt(o, "max_files", int64(g.MaxFiles))
	if len(g.Agreements) > 0 {
		ts := make([]*ast.Term, len(g.Agreements))
		for i, a := range g.Agreements {
			ag := ast.NewObject(
				field("parties", stringList(a.Parties)),
				field("kind", jsonString(a.Kind)),
				field("signed", jsonString(a.Signed)),
			)
			optString(ag, "expires", a.Expires)
			ts[i] = ast.NewTerm(ag)
		}
		o.Insert(jsonString("agreements"), ast.ArrayTerm(ts...))
	}
	return o
}

func siteValue(s Site) ast.Value {
	o := ast.NewObject(field("name", jsonString(s.Name)))
	optStrings(o, "paths", s.Paths)
	optString(o, "jurisdiction", s.Jurisdiction)
	optStrings(o, "certifications", s.Certifications)
	if h := s.BusinessHours; h != nil {
		o.Insert(jsonString("business_hours"), ast.ObjectTerm(
			field("time_zone", jsonString(h.TimeZone)),
			field("days", stringList(h.Days)),
			field("from", jsonString(h.From)),
			field("to", jsonString(h.To)),
		))
	}
	return o
}

// field is one key and value of an object.
// jsonString is s as a string term the way encoding/json writes it: each byte
// that is not valid UTF-8 becomes U+FFFD (found by FuzzFacts; "lex policy
// explain --local" takes parties from the command line).
func jsonString(s string) *ast.Term {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	return ast.StringTerm(s)
}

func field(k string, v *ast.Term) [2]*ast.Term { return [2]*ast.Term{jsonString(k), v} }

// stringList is a JSON list of strings; nil is null, as encoding/json has it.
func stringList(ss []string) *ast.Term {
	if ss == nil {
		return ast.NullTerm()
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = jsonString(s)
	}
	return ast.ArrayTerm(ts...)
}

// optString, optStrings and optInt add a field tagged omitempty.
func optString(o ast.Object, k, v string) {
	if v != "" {
		o.Insert(jsonString(k), jsonString(v))
	}
}

func optStrings(o ast.Object, k string, v []string) {
	if len(v) > 0 {
		o.Insert(jsonString(k), stringList(v))
	}
}

func optInt(o ast.Object, k string, v int64) {
	if v != 0 {
		o.Insert(jsonString(k), ast.IntNumberTerm(int(v)))
	}
}

// jsonTime is t as encoding/json writes a time.Time: RFC 3339 with
// nanoseconds, trailing zeros dropped.
func jsonTime(t time.Time) string { return t.Format(time.RFC3339Nano) }
