package lexgate

# Sending: every recipient's organisation must be the sender's own, or have
# at least one agreement (NDA, DPA, SCC, BAA...) in force with it.

deny contains reason("send.no_recipients", "a transfer needs at least one recipient") if {
	action == "send"
	count(counterparties) == 0
}

deny contains reason(
	"agreement.none",
	sprintf("%s has no agreement in force with %s: no agreement between them is on file", [p.trust_domain, source.trust_domain]),
) if {
	action == "send"
	some p in counterparties
	known(source)
	known(p)
	count(agreements_between(source.trust_domain, p.trust_domain)) == 0
	not covered(source.trust_domain, p.trust_domain)
}

deny contains reason(
	"agreement.not_in_force",
	sprintf("%s has no agreement in force with %s: %s", [p.trust_domain, source.trust_domain, why]),
) if {
	action == "send"
	some p in counterparties
	known(source)
	known(p)
	kinds := agreement_kinds(source.trust_domain, p.trust_domain)
	count(kinds) > 0
	not covered(source.trust_domain, p.trust_domain)
	why := why_not(source.trust_domain, p.trust_domain, kinds)
}
