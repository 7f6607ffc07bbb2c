package lexgate

# China PIPL (art. 38): personal information of data subjects in mainland
# China may leave it only under the CAC standard contract (kind
# "PIPL-SCC") in force between the two organisations, or to an
# organisation holding PIPL personal-information-protection certification
# ("PIPL certification"). China has no adequacy list: every export needs one.

# pipl_kinds are the agreements that make such a transfer lawful.
pipl_kinds := {"PIPL-SCC"}

# pipl_certification lets a recipient take PIPL exports without a contract.
pipl_certification := "PIPL certification"

deny contains {
	"code": "pipl.no_transfer_mechanism",
	"message": sprintf("Personal information of subjects in China may go to %s only under the CAC standard contract (PIPL-SCC) or to a PIPL-certified recipient; between %s and %s %s", [
		to.jurisdiction, from.trust_domain, to.trust_domain,
		why_not(from.trust_domain, to.trust_domain, pipl_kinds),
	]),
} if {
	"CN" in regions
	personal
	some [from, to] in flows
	from.organisation
	to.organisation
	to.jurisdiction != "CN" # leaves mainland China; there is no adequacy list
	count(in_force_kinds(from.trust_domain, to.trust_domain) & pipl_kinds) == 0
	not pipl_certification in object.get(to, "certifications", []) # certifications(to)
}
