package lexgate

# Export control: material labelled `export-controlled` (technical data
# or technology under the US EAR/ITAR or the EU Dual-Use Regulation (EU)
# 2021/821) may go to another country, or to an organisation whose staff
# on the matter includes other nationals (a "deemed export"), only under a
# licence or a licence exception recorded on the matter
# (`export_control`: authorisation "licence" or "exception", reference,
# countries, expires) covering the recipient's country and the
# nationalities the organisation records (`nationalities`). The policy does
# not classify items (ECCN, ML category) or screen end uses: the record on
# the matter is counsel's determination.

deny contains {
	"code": "export.no_authorisation",
	"message": sprintf("%s (%s%s) may receive export-controlled material of matter %s only under a licence or licence exception recorded on the matter that covers %s (EAR 15 CFR 730-774, ITAR 22 CFR 120-130, EU Regulation 2021/821 Art. 3); %s", [
		who(to), to.jurisdiction, nationality_note(to), matter_id, concat(", ", sort(export_countries(to))), export_gap(to),
	]),
} if {
	"export-controlled" in labels
	some [from, to] in recipient_flows # places.rego: the receiver is known
	export_countries(to) != {from.jurisdiction}
	not export_authorised(to)
}

# export_countries are the countries an export to party p reaches: its
# jurisdiction and the nationalities its organisation records.
export_countries(p) := {p.jurisdiction} | {n | some n in object.get(data.data.organisations, [p.trust_domain, "nationalities"], [])}

# export_authorised holds when an authorisation on the matter in force
# covers every country an export to p reaches.
export_authorised(p) if {
	some a in object.get(matter_record, "export_control", [])
	a.authorisation in {"licence", "exception"}
	not entry_lapsed({"until": object.get(a, "expires", "9999-12-31")})
	count(export_countries(p) - {c | some c in a.countries}) == 0
}

# nationality_note names the nationalities of p's organisation, if recorded.
nationality_note(p) := sprintf(", staff of nationalities %s", [concat(" ", sort(ns))]) if {
	ns := object.get(data.data.organisations, [p.trust_domain, "nationalities"], [])
	count(ns) > 0
} else := ""

# export_gap says what the matter lacks.
export_gap(p) := "the matter records none" if {
	count(object.get(matter_record, "export_control", [])) == 0
} else := "the ones it records have expired or do not cover them all"
