package lexgate

# UK GDPR: personal data of UK data subjects may leave the UK only to a
# country covered by UK adequacy regulations
# (data.data.jurisdictions.uk_adequacy, EU/EEA included) or under the
# International Data Transfer Agreement (IDTA) or the UK Addendum to the EU
# SCCs (kind "UK-ADDENDUM") in force between the two organisations.

# uk_kinds are the agreements that make such a transfer lawful.
uk_kinds := {"IDTA", "UK-ADDENDUM"}

# uk_subjects holds when some data subjects of the bundle live in the UK.
uk_subjects if {
	some r in regions
	r in {"GB", "UK"}
}

deny contains {
	"code": "uk_gdpr.no_transfer_mechanism",
	"message": sprintf("Personal data of UK subjects may go to %s only under an IDTA or the UK Addendum (%s has no UK adequacy regulations); between %s and %s %s", [
		to.jurisdiction, to.jurisdiction, from.trust_domain, to.trust_domain,
		why_not(from.trust_domain, to.trust_domain, uk_kinds),
	]),
} if {
	uk_subjects
	personal
	some [from, to] in flows
	from.organisation
	to.organisation
	j := to.jurisdiction
	j != "GB" # leaves the UK and the EEA (adequate for UK GDPR since 2021-01-01)
	not j in data.data.jurisdictions.eu_eea
	not adequate(data.data.jurisdictions.uk_adequacy, j)
	count(in_force_kinds(from.trust_domain, to.trust_domain) & uk_kinds) == 0
}
