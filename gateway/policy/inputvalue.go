package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputValue is in as an OPA value: exactly the value of its JSON form (the
// form policies/README.md documents, with encoding/json's omitempty and
// null rules), built directly. Going through JSON text cost a tenth of a
// decision. TestInputValueIsItsJSON holds the two forms equal.
func inputValue(in Input) ast.Value {
	o := ast.NewObject(
		field("version", ast.InternedTerm(in.Version)),
		field("action", ast.StringTerm(in.Action)),
		field("time", ast.StringTerm(jsonTime(in.Time))),
		field("source", ast.NewTerm(partyValue(in.Source))),
		field("risk_score", ast.InternedTerm(in.RiskScore)),
	)
	if len(in.Destinations) > 0 {
		ts := make([]*ast.Term, len(in.Destinations))
		for i, p := range in.Destinations {
			ts[i] = ast.NewTerm(partyValue(p))
		}
		o.Insert(ast.StringTerm("destinations"), ast.ArrayTerm(ts...))
	}
	if b := in.Bundle; b != nil {
		o.Insert(ast.StringTerm("bundle"), ast.ObjectTerm(
			field("matter", ast.StringTerm(b.Matter)),
			field("labels", stringList(b.Labels)),
			field("data_subject_regions", stringList(b.Regions)),
			field("size", ast.IntNumberTerm(int(b.Size))),
			field("file_count", ast.InternedTerm(b.FileCount)),
			field("manifest_hash", ast.StringTerm(b.ManifestHash)),
		))
	}
	return o
}

func partyValue(p Party) ast.Value {
	o := ast.NewObject(
		field("id", ast.StringTerm(p.ID)),
		field("trust_domain", ast.StringTerm(p.TrustDomain)),
		field("path", ast.StringTerm(p.Path)),
		field("eu_eea", ast.InternedTerm(p.EUEEA)),
	)
	if p.Organisation != nil {
		o.Insert(ast.StringTerm("organisation"), ast.NewTerm(organisationValue(*p.Organisation)))
	}
	if p.Site != nil {
		o.Insert(ast.StringTerm("site"), ast.NewTerm(siteValue(*p.Site)))
	}
	optString(o, "jurisdiction", p.Jurisdiction)
	optStrings(o, "certifications", p.Certifications)
	return o
}

func organisationValue(g Organisation) ast.Value {
	o := ast.NewObject(
		field("trust_domain", ast.StringTerm(g.TrustDomain)),
		field("name", ast.StringTerm(g.Name)),
		field("jurisdiction", ast.StringTerm(g.Jurisdiction)),
		field("eu_eea", ast.InternedTerm(g.EUEEA)),
	)
	optString(o, "kind", g.Kind)
	if len(g.Sites) > 0 {
		ts := make([]*ast.Term, len(g.Sites))
		for i, s := range g.Sites {
			ts[i] = ast.NewTerm(siteValue(s))
		}
		o.Insert(ast.StringTerm("sites"), ast.ArrayTerm(ts...))
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
				field("kind", ast.StringTerm(a.Kind)),
				field("signed", ast.StringTerm(a.Signed)),
			)
			optString(ag, "expires", a.Expires)
			ts[i] = ast.NewTerm(ag)
		}
		o.Insert(ast.StringTerm("agreements"), ast.ArrayTerm(ts...))
	}
	return o
}

func siteValue(s Site) ast.Value {
	o := ast.NewObject(field("name", ast.StringTerm(s.Name)))
	optStrings(o, "paths", s.Paths)
	optString(o, "jurisdiction", s.Jurisdiction)
	optStrings(o, "certifications", s.Certifications)
	if h := s.BusinessHours; h != nil {
		o.Insert(ast.StringTerm("business_hours"), ast.ObjectTerm(
			field("time_zone", ast.StringTerm(h.TimeZone)),
			field("days", stringList(h.Days)),
			field("from", ast.StringTerm(h.From)),
			field("to", ast.StringTerm(h.To)),
		))
	}
	return o
}

// field is one key and value of an object.
func field(k string, v *ast.Term) [2]*ast.Term { return [2]*ast.Term{ast.StringTerm(k), v} }

// stringList is a JSON list of strings; nil is null, as encoding/json has it.
func stringList(ss []string) *ast.Term {
	if ss == nil {
		return ast.NullTerm()
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

// optString, optStrings and optInt add a field tagged omitempty.
func optString(o ast.Object, k, v string) {
	if v != "" {
		o.Insert(ast.StringTerm(k), ast.StringTerm(v))
	}
}

func optStrings(o ast.Object, k string, v []string) {
	if len(v) > 0 {
		o.Insert(ast.StringTerm(k), stringList(v))
	}
}

func optInt(o ast.Object, k string, v int64) {
	if v != 0 {
		o.Insert(ast.StringTerm(k), ast.IntNumberTerm(int(v)))
	}
}

// jsonTime is t as encoding/json writes a time.Time: RFC 3339 with
// nanoseconds, trailing zeros dropped.
func jsonTime(t time.Time) string { return t.Format(time.RFC3339Nano) }
