package lexgate

# Swiss FADP (Art. 16): personal data may leave Switzerland only to a
# country on the Federal Council's list (Annex 1 DPO;
# data.data.jurisdictions.ch_adequacy, EU/EEA included) or under SCCs
# (adapted to Swiss law) or BCRs in force between the two organisations,
# covering the destination, with a current transfer impact assessment.
# Applies when the exporter is established in Switzerland or the data
# subjects are there.

# ch_kinds are the agreements that make such a transfer lawful.
ch_kinds := {"SCC", "BCR"}

# ch_subjects holds when some data subjects of the bundle live in Switzerland.
ch_subjects if "CH" in regions

# ch_exporter holds when party p is established in Switzerland.
ch_exporter(p) if p.jurisdiction == "CH"

else if p.organisation.jurisdiction == "CH"

# ch_in_play holds when the FADP can reach some flow of the request: Swiss
# data subjects, or an exporter established in Switzerland (places.rego,
# exporter_places). Without it no flow is looked at.
ch_in_play if ch_subjects

else if "CH" in exporter_places

# ch_reaches holds when the FADP applies to a flow from `from`.
ch_reaches(from) if ch_exporter(from)

else if ch_subjects

personal_denies contains {
	"code": sprintf("fadp.%s", [problem[0]]),
	"message": sprintf("Personal data of Swiss subjects may go to %s only under SCCs or BCRs (%s is not on the Swiss adequacy list); between %s and %s %s", [
		to.jurisdiction, to.jurisdiction, from.trust_domain, to.trust_domain, problem[1],
	]),
} if {
	personal == true
	ch_in_play == true
	some [from, to] in org_flows # places.rego: both parties known
	ch_reaches(from)
	to.jurisdiction != "CH" # leaves Switzerland and the EEA (on the Federal Council's list)
	not to.jurisdiction in data.data.jurisdictions.eu_eea
	not adequate_for(data.data.jurisdictions.ch_adequacy, to)
	not has_instrument(from, to, ch_kinds)
	problem := instrument_problem(from, to, ch_kinds)
}
