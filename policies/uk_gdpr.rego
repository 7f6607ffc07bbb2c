package lexgate

# UK GDPR Chapter V: personal data may leave the UK only to a country
# covered by UK adequacy regulations (data.data.jurisdictions.uk_adequacy;
# the EEA included, DPA 2018 Sch. 21 para. 5) or under the International
# Data Transfer Agreement (IDTA) or the UK Addendum to the EU SCCs (kind
# "UK-ADDENDUM") in force between the two organisations. The Addendum
# amends the EU SCCs: it counts only beside 2021/914 SCCs in force between
# the same organisations (ICO, International data transfer agreement and
# guidance). Applies when the exporter is established in the UK or the
# data subjects are in the UK.

# uk_kinds are the agreements that make such a transfer lawful.
uk_kinds := {"IDTA", "UK-ADDENDUM"}

# uk_subjects holds when some data subjects of the bundle live in the UK.
uk_subjects if {
	some r in regions
	r in {"GB", "UK"}
}

# uk_exporter holds when party p is established in the UK.
uk_exporter(p) if p.jurisdiction == "GB"

else if p.organisation.jurisdiction == "GB"

# uk_instrument holds when an IDTA, or the UK Addendum beside 2021/914
# SCCs, makes the transfer lawful.
uk_instrument(from, to) if has_instrument(from, to, {"IDTA"})

else if {
	has_instrument(from, to, {"UK-ADDENDUM"})
	has_instrument(from, to, {"SCC"})
}

personal_denies contains {
	"code": "uk_gdpr.no_transfer_mechanism",
	"message": sprintf("Personal data of UK subjects may go to %s only under an IDTA or the UK Addendum (%s has no UK adequacy regulations); between %s and %s %s", [
		to.jurisdiction, to.jurisdiction, from.trust_domain, to.trust_domain,
		why_not(from.trust_domain, to.trust_domain, uk_kinds),
	]),
} if {
	some [from, to] in uk_flows
	not uk_instrument(from, to)
	not has_any_in_force(from.trust_domain, to.trust_domain, uk_kinds)
}

personal_denies contains {
	"code": sprintf("uk_gdpr.%s", [problem[0]]),
	"message": sprintf("UK GDPR Art. 46: personal data may go from %s to %s (%s) only under the IDTA, or the UK Addendum with the EU SCCs; %s", [
		from.trust_domain, to.trust_domain, to.jurisdiction, problem[1],
	]),
} if {
	some [from, to] in uk_flows
	not uk_instrument(from, to)
	has_any_in_force(from.trust_domain, to.trust_domain, uk_kinds)
	problem := uk_problem(from, to)
}

# uk_problem says why the IDTA or the Addendum in force does not suffice.
uk_problem(from, to) := ["addendum_without_scc", sprintf("the UK Addendum between %s and %s amends the EU SCCs, and no 2021/914 SCCs valid for this transfer are in force beside it (%s)", [
	from.trust_domain, to.trust_domain, instrument_problem(from, to, {"SCC"})[1],
])] if {
	not has_any_in_force(from.trust_domain, to.trust_domain, {"IDTA"})
	has_instrument(from, to, {"UK-ADDENDUM"})
} else := instrument_problem(from, to, uk_kinds)

# uk_flows are the flows that leave the UK and the EEA under the UK GDPR
# without UK adequacy regulations for the recipient: [from, to].
uk_flows := [[from, to] |
	personal == true
	uk_in_play == true
	some [from, to] in org_flows # places.rego: both parties known
	uk_reaches(from)
	to.jurisdiction != "GB"
	not to.jurisdiction in data.data.jurisdictions.eu_eea
	not adequate_for(data.data.jurisdictions.uk_adequacy, to)
]

# uk_in_play holds when the UK GDPR can reach some flow of the request:
# UK data subjects, or an exporter established in the UK (places.rego,
# exporter_places). Without it no flow is looked at.
uk_in_play if uk_subjects

else if "GB" in exporter_places

# uk_reaches holds when the UK GDPR applies to a flow from `from`.
uk_reaches(from) if uk_exporter(from)

else if uk_subjects
