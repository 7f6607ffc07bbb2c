package lexgate

# Health data (a bundle labelled "health") may only travel between two
# organisations with a Business Associate Agreement (BAA) in force. It is
# checked when a bundle is sent and again when it is received, so a BAA
# that lapses in between stops the delivery.

# labelled holds when the bundle carries the label among its effective
# labels (the matter's categories and the sender's labels, matters.rego).
labelled(label) if label in labels

deny contains {
	"code": "hipaa.no_baa",
	"message": sprintf("%s cannot receive health data from %s without a Business Associate Agreement (BAA): %s", [recipient, sender, why_not(sender, recipient, {"BAA"})]),
} if {
	"health" in labels
	action in {"send", "receive"}
	source.organisation
	some p in counterparties
	p.organisation
	[sender, recipient] := health_flow(p)
	sender != recipient
	not "BAA" in in_force_kinds(sender, recipient)
}

# health_flow is [sender, recipient] trust domains of a flow: on send the
# source sends to the counterparty, on receive the counterparty sent to it.
health_flow(p) := [source.trust_domain, p.trust_domain] if {
	input.action == "send"
} else := [p.trust_domain, source.trust_domain]

deny contains {
	"code": "hipaa.no_baa",
	"message": "health data can only be delivered when the policy knows who sent it, to check their Business Associate Agreement (BAA): the request names no sender",
} if {
	input.action == "receive"
	"health" in labels
	count(counterparties) == 0
}
