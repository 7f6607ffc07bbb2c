package lexgate

# Health data (a bundle whose effective labels hold "health" or "phi") may
# only travel between two organisations with a Business Associate
# Agreement (BAA) in force (HIPAA, 45 CFR 164.502(e), 164.504(e);
# subcontractors 164.308(b)(2)).
#
# Protected health information ("phi": the matter's category, from a client
# that is a covered entity or business associate) needs the chain of BAAs:
# the client's with the firm, recorded on the matter (client_baa:
# reference, signed, expires), and the firm's with each subcontractor (an
# agreement of kind BAA). The matter decides: a sender cannot take the
# category away. It is
# checked when a bundle is sent and again when it is received, so a BAA
# that lapses in between stops the delivery.

# labelled holds when the bundle carries the label among its effective
# labels (the matter's categories and the sender's labels, matters.rego).
labelled(label) if label in labels

# health_labels bring the BAA rules in.
health_labels := {"health", "phi"}

# The rules below add to health_denies, which counts only for health data.
deny contains r if {
	count(labels & health_labels) > 0
	some r in health_denies
}

health_denies contains {
	"code": "hipaa.no_baa",
	"message": sprintf("%s cannot receive health data from %s without a Business Associate Agreement (BAA): %s", [recipient, sender, why_not(sender, recipient, {"BAA"})]),
} if {
	count(labels & health_labels) > 0
	action in {"send", "receive"}
	source.organisation != false
	some p in counterparties
	p.organisation != false
	[sender, recipient] := health_flow(p)
	sender != recipient
	not "BAA" in in_force_kinds(sender, recipient)
}

# health_flow is [sender, recipient] trust domains of a flow: on send the
# source sends to the counterparty, on receive the counterparty sent to it.
health_flow(p) := [source.trust_domain, p.trust_domain] if {
	input.action == "send"
} else := [p.trust_domain, source.trust_domain]

health_denies contains {
	"code": "hipaa.no_baa",
	"message": "health data can only be delivered when the policy knows who sent it, to check their Business Associate Agreement (BAA): the request names no sender",
} if {
	input.action == "receive"
	count(labels & health_labels) > 0
	count(counterparties) == 0
}

# client_baa_in_force holds when the matter records the client's BAA with
# the firm, in force today.
client_baa_in_force if {
	b := matter_record.client_baa
	b.signed <= today
	not entry_lapsed({"until": object.get(b, "expires", "9999-12-31")})
}

health_denies contains {
	"code": "hipaa.no_client_baa",
	"message": sprintf("matter %s holds protected health information of %s: the firm may pass it to %s only under the client's Business Associate Agreement with the firm (45 CFR 164.502(e), 164.504(e)), which the matter does not record in force (client_baa)", [
		matter_id, object.get(matter_record, "client", "?"), to.trust_domain,
	]),
} if {
	"phi" in labels
	matter != false
	some [_, to] in recipient_flows # places.rego: the receiver is known
	to.trust_domain != matter_owner
	not client_baa_in_force
}
