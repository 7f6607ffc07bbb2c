package lexgate

# Health data (a bundle labelled "health") may only travel between two
# organisations with a Business Associate Agreement (BAA) in force. It is
# checked when a bundle is sent and again when it is received, so a BAA
# that lapses in between stops the delivery.

# labelled holds when the bundle carries the label.
labelled(label) if label in input.bundle.labels

deny contains reason(
	"hipaa.no_baa",
	sprintf("%s cannot receive health data from %s without a Business Associate Agreement (BAA): %s", [recipient, sender, why_not(sender, recipient, {"BAA"})]),
) if {
	action in {"send", "receive"}
	labelled("health")
	known(source)
	some p in counterparties
	known(p)
	[sender, recipient] := health_flow(p)
	sender != recipient
	not has_in_force(sender, recipient, "BAA")
}

# health_flow is [sender, recipient] trust domains of a flow: on send the
# source sends to the counterparty, on receive the counterparty sent to it.
health_flow(p) := [source.trust_domain, p.trust_domain] if {
	action == "send"
} else := [p.trust_domain, source.trust_domain]

deny contains reason(
	"hipaa.no_baa",
	"health data can only be delivered when the policy knows who sent it, to check their Business Associate Agreement (BAA): the request names no sender",
) if {
	action == "receive"
	labelled("health")
	count(counterparties) == 0
}
