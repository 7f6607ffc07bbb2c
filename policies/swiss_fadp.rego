package lexgate

# Swiss FADP (art. 16): personal data of Swiss data subjects may leave
# Switzerland only to a country on the Federal Council's list
# (data.data.jurisdictions.ch_adequacy, EU/EEA included) or under SCCs
# (adapted to Swiss law) or BCRs in force between the two organisations.

# ch_kinds are the agreements that make such a transfer lawful.
ch_kinds := {"SCC", "BCR"}

# ch_subjects holds when some data subjects of the bundle live in Switzerland.
ch_subjects if "CH" in regions

deny contains {
	"code": "fadp.no_transfer_mechanism",
	"message": sprintf("Personal data of Swiss subjects may go to %s only under SCCs or BCRs (%s is not on the Swiss adequacy list); between %s and %s %s", [
		to.jurisdiction, to.jurisdiction, from.trust_domain, to.trust_domain,
		why_not(from.trust_domain, to.trust_domain, ch_kinds),
	]),
} if {
	ch_subjects
	personal
	some [from, to] in flows
	from.organisation
	to.organisation
	j := to.jurisdiction
	j != "CH" # leaves Switzerland and the EEA (on the Federal Council's list)
	not j in data.data.jurisdictions.eu_eea
	not adequate(data.data.jurisdictions.ch_adequacy, j)
	count(in_force_kinds(from.trust_domain, to.trust_domain) & ch_kinds) == 0
}
