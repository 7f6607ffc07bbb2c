package lexgate

# GDPR Chapter V: personal data of EU/EEA data subjects may leave the EEA
# only to a country with an adequacy decision in force
# (data.data.jurisdictions.gdpr_adequacy) or under Standard Contractual
# Clauses (SCC) or Binding Corporate Rules (BCR) in force between the two
# organisations. Checked on send and again on receive.

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

deny contains {
	"code": "gdpr.no_transfer_mechanism",
	"message": sprintf("Personal data of EU/EEA subjects may go to %s only under SCCs or BCRs (%s has no EU adequacy decision); between %s and %s %s", [
		to.jurisdiction, to.jurisdiction, from.trust_domain, to.trust_domain,
		why_not(from.trust_domain, to.trust_domain, gdpr_kinds),
	]),
} if {
	eea_subjects
	personal
	some [from, to] in flows
	from.organisation
	to.organisation
	j := to.jurisdiction
	not j in data.data.jurisdictions.eu_eea # leaves the EEA
	not adequate(data.data.jurisdictions.gdpr_adequacy, j)
	count(in_force_kinds(from.trust_domain, to.trust_domain) & gdpr_kinds) == 0
}
