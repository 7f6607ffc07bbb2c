package lexgate

# Sending: every recipient's organisation must be the sender's own, or have
# at least one agreement (NDA, DPA, SCC, BAA...) in force with it.

deny contains {"code": "send.no_recipients", "message": "a transfer needs at least one recipient"} if {
	input.action == "send"
	count(counterparties) == 0
}

deny contains {
	"code": "agreement.none",
	"message": sprintf("%s has no agreement in force with %s: no agreement between them is on file", [p.trust_domain, s.trust_domain]),
} if {
	input.action == "send"
	some [s, p] in cross_flows # places.rego: the source and a recipient of another known organisation
	count(agreements_between(s.trust_domain, p.trust_domain)) == 0
}

deny contains {
	"code": "agreement.not_in_force",
	"message": sprintf("%s has no agreement in force with %s: %s", [p.trust_domain, s.trust_domain, why]),
} if {
	input.action == "send"
	some [s, p] in cross_flows # places.rego: the source and a recipient of another known organisation
	count(in_force_kinds(s.trust_domain, p.trust_domain)) == 0
	kinds := agreement_kinds(s.trust_domain, p.trust_domain)
	count(kinds) > 0
	why := why_not(s.trust_domain, p.trust_domain, kinds)
}
