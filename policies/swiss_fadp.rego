package lexgate

# Swiss FADP (art. 16): personal data of Swiss data subjects may leave
# Switzerland only to a country on the Federal Council's list
# (data.data.jurisdictions.ch_adequacy, EU/EEA included) or under SCCs
# (adapted to Swiss law) or BCRs in force between the two organisations.

# ch_kinds are the agreements that make such a transfer lawful.
ch_kinds := {"SCC", "BCR"}

# ch_subjects holds when some data subjects of the bundle live in Switzerland.
ch_subjects if "CH" in input.bundle.data_subject_regions

# ch_home are the jurisdictions the FADP lets personal data go to freely.
ch_home := {"CH", "EEA"}

deny contains {
	"code": "fadp.no_transfer_mechanism",
	"message": sprintf("Personal data of Swiss subjects may go to %s only under SCCs or BCRs (%s is not on the Swiss adequacy list); between %s and %s %s", [
		to.jurisdiction, to.jurisdiction, from.trust_domain, to.trust_domain,
		why_not(from.trust_domain, to.trust_domain, ch_kinds),
	]),
} if {
	"CH" in input.bundle.data_subject_regions # ch_subjects, tested on the input so that OPA's rule index applies
	personal
	some [from, to] in flows
	export_needs_mechanism(from, to, ch_home, data.data.jurisdictions.ch_adequacy, ch_kinds)
}
