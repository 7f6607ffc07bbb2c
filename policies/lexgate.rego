# Package lexgate is the policy of the lexgate gateway.
#
# The gateway asks one question for every action, data.lexgate.decision,
# and reads back {"allow", "reasons", "obligations"}. Everything that is
# not explicitly allowed is denied, and every denial carries at least one
# reason a paralegal can act on. See README.md for the input document.
#
# Each concern lives in its own file and adds to the `deny` set:
#   organisations.rego  who the parties are, and which agreements are in force
#   send.rego           sending a bundle to its recipients
#   matters.rego        the matter registry: classification, recipients, client consent
#   requests.rego       matter actions: four-eyes recipients, legal holds, certificates
#   places.rego         sites, jurisdictions, adequacy and embargo lists, flows
#   health.rego         HIPAA: health data needs a BAA
#   gdpr.rego           GDPR Chapter V: EU/EEA personal data leaving the EEA
#   uk_gdpr.rego        UK GDPR: UK personal data leaving the UK (IDTA, UK Addendum)
#   swiss_fadp.rego     Swiss FADP: Swiss personal data leaving Switzerland
#   china_pipl.rego     China PIPL: personal information leaving mainland China
#   privilege.rego      privileged material: ISO 27001 site and an NDA
#   sanctions.rego      no action to or from an embargoed jurisdiction
#   walls.rego          ethical walls per matter
#   limits.rego         bundle size and file count per organisation, business hours per site
#   admin.rego          who may administer and explain
#   obligations.rego    retention, download limits and expiry of a transfer
package lexgate

# actions lists the actions this policy knows how to decide. Anything else
# is denied until a rule for it is written. sftp_login is allowed for an
# identity of a known organisation, like the other self-service actions;
# admin only for the administrators (admin.rego).
actions := {
	"send", "receive", "register_key", "lookup_key", "list_inbox", "ack", "sftp_login", "admin", "explain",
	"matter_request_recipient", "matter_approve_recipient", "legal_hold_place", "legal_hold_lift", "fetch_certificate",
}

# input_version is the version of the input document this policy reads.
input_version := 1

# decision is the single entry point the gateway evaluates.
decision := {
	"allow": allow,
	"reasons": reasons,
	"obligations": decision_obligations,
	"notes": sort(notes), # facts an allowed decision rests on, for the audit trail (gdpr.rego: Art. 49)
}

# decision_obligations are the obligations of an allowed decision, and {}
# for a refused one: nothing is transferred, so there is nothing to enforce,
# and a refusal does not work them out.
decision_obligations := obligations if allow

else := {}

default allow := false

# allow needs a positive reason (permit) and no reason to refuse (deny).
allow if {
	permit == true
	count(deny) == 0
}

# permit holds for a well-formed request from a known organisation, doing
# an action this policy knows, where every counterparty is known too.
permit if {
	input.version == input_version
	action in actions
	source.organisation != false
	count(unknown_counterparties) == 0
}

# reasons explains the decision: why it was refused, or nothing when allowed.
reasons := sort(deny) if {
	count(deny) > 0
} else := [] if {
	allow == true
} else := [reason("policy.default_deny", "no policy rule allows this request")]

# reason builds one entry of decision.reasons.
reason(code, message) := {"code": code, "message": message}

deny contains {
	"code": "action.unknown",
	"message": sprintf("the action %q is not allowed by policy", [action]),
} if {
	not action in actions
}

deny contains {
	"code": "input.version",
	"message": sprintf("the gateway sent input version %v, but this policy reads version %v", [object.get(input, "version", "none"), input_version]),
} if {
	not input.version == input_version
}

deny contains {"code": "input.time", "message": "the request has no valid time"} if {
	not now
}

# now is the time of the request, in nanoseconds since the Unix epoch.
# Policies read the clock from the input, never from the host, so a
# decision can be replayed.
now := time.parse_rfc3339_ns(input.time)

# action is the action requested ("" when missing).
action := object.get(input, "action", "")

# source is the party requesting the action ({} when missing), with its
# facts (with_facts, places.rego).
source := s if {
	s := input.source
	is_object(s.organisation) # enriched(s)
} else := with_facts(object.get(input, "source", {}), null)

# counterparties are the other parties of the action: the recipients of a
# send, the sender of a transfer being received or acknowledged; each with
# its facts, its organisation carrying its agreements with the source's. The
# gateway sends them enriched, and they are used as they are.
counterparties := ps if {
	ps := input.destinations
	count([p | some p in ps; is_object(p.organisation)]) == count(ps) # every p is enriched(p); 15 allocations fewer than `every`
} else := [with_facts(p, object.get(source, "trust_domain", null)) | some p in object.get(input, "destinations", [])]

# parties are the source and the counterparties.
parties := array.concat([source], counterparties)
