package lexgate

# GDPR Chapter V (Art. 44-49): personal data may leave the EEA only to a
# country with an adequacy decision in force for the recipient (Art. 45;
# data.data.jurisdictions.gdpr_adequacy), under appropriate safeguards
# (Art. 46: the 2021/914 SCCs or BCRs in force between the two
# organisations, covering the destination, with a current transfer impact
# assessment: transfers.rego), or under a derogation recorded on the
# matter (Art. 49, e.g. 49(1)(e) for legal claims).
#
# The rules apply to a flow when the exporter is subject to the GDPR
# (Art. 3(1): its site or its organisation is established in the EEA) or
# when the data subjects are in the EEA (Art. 3(2)): EDPB Guidelines
# 05/2021 on the interplay of Art. 3 and Chapter V. Checked on send and
# again on receive.

# gdpr_kinds are the agreements that make such a transfer lawful.
gdpr_kinds := {"SCC", "BCR"}

# eea_subjects holds when some data subjects of the bundle live in the EU/EEA
# (eea(r), places.rego, written out: a function call per region costs an
# evaluation and a cache entry).
eea_subjects if {
	some r in regions
	r in data.data.jurisdictions.eu_eea
}

eea_subjects if "EU" in regions

eea_subjects if "EEA" in regions

# gdpr_exporter holds when party p is established in the EEA: its site's
# or its organisation's jurisdiction (Art. 3(1)).
# (false rather than undefined when it does not hold: OPA keeps a
# function's value for the rest of the decision, but works an undefined
# one out again at every call, and gdpr_reaches, gdpr_scope and
# under_gdpr_or_uk (transfers.rego) each ask it of the same exporter.)
default gdpr_exporter(_) := false

gdpr_exporter(p) if p.jurisdiction in data.data.jurisdictions.eu_eea

else if p.organisation.jurisdiction in data.data.jurisdictions.eu_eea

# gdpr_scope says why the GDPR reaches a flow from `from`, for messages.
gdpr_scope(from) := sprintf("%s is established in the EEA (GDPR Art. 3(1))", [from.trust_domain]) if {
	gdpr_exporter(from)
} else := "its data subjects are in the EEA (GDPR Art. 3(2))"

# derogation is the Art. 49 derogation recorded on the matter that covers
# a transfer to `to` (every country, or its country among `countries`).
derogation(to) := d if {
	some d in object.get(matter_record, "derogations", [])
	startswith(d.article, "49(1)")
	derogation_covers(d, to)
}

derogation_covers(d, to) if not d.countries

else if to.jurisdiction in d.countries

# gdpr_flows are the flows that leave the EEA under the GDPR without an
# adequacy decision for the recipient: [from, to].
gdpr_flows := [[from, to] |
	personal == true
	some [from, to] in org_flows # places.rego: both parties known
	not to.jurisdiction in data.data.jurisdictions.eu_eea # leaves the EEA
	gdpr_reaches(from)
	not adequate_for(data.data.jurisdictions.gdpr_adequacy, to)
]

# gdpr_reaches holds when the GDPR applies to a flow from `from`.
gdpr_reaches(from) if gdpr_exporter(from)

else if eea_subjects

personal_denies contains {
	"code": sprintf("gdpr.%s", [problem[0]]),
	"message": sprintf("GDPR Art. 44-46: personal data may go from %s to %s (%s) only under an adequacy decision, the 2021/914 SCCs or BCRs, or an Art. 49 derogation recorded on the matter, because %s; %s has no EU adequacy decision for this recipient, and %s", [
		from.trust_domain, to.trust_domain, to.jurisdiction, gdpr_scope(from), to.jurisdiction, problem[1],
	]),
} if {
	some [from, to] in gdpr_flows
	not has_instrument(from, to, gdpr_kinds)
	not derogation(to)
	problem := instrument_problem(from, to, gdpr_kinds)
}

# notes are facts an allowed decision rests on that the audit log should
# show: the Art. 49 derogations relied on.
notes contains {
	"code": "gdpr.art49_derogation",
	"message": sprintf("transfer to %s (%s) relies on the GDPR Art. %s derogation recorded on matter %s: %s", [
		to.trust_domain, to.jurisdiction, d.article, matter_id, d.justification,
	]),
} if {
	some [from, to] in gdpr_flows
	not has_instrument(from, to, gdpr_kinds)
	d := derogation(to)
}
