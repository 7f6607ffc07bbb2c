package lexgate

# Matter governance actions: adding a recipient to a matter (requested by
# one person, approved by another: four-eyes), placing and lifting a legal
# hold, and fetching a destruction certificate. Who may do what is policy
# data. The gateway fills input.source.roles (sorted) from the people
# directory the firm syncs from its identity provider (data/people.json:
# people[organisation][SPIFFE ID or person subject].groups, mapped to roles
# by roles_from_groups[organisation][group]) and from data.data.roles
# (data/access.json), which lists, per role, SPIFFE IDs or team prefixes
# ending in "/". Either source of a role counts:
#
#   approver         approves a pending request to add a recipient
#   records_manager  places and lifts legal holds
#   security_admin   places and lifts legal holds too
#
# A role holder acts only on matters of their own organisation.

# The rules below add to request_denies, which counts only for a request
# that names input.request: for every other action one failed lookup
# settles them all.
deny contains r if {
	input.request != false
	some r in request_denies
}

# request_actions are the actions about a matter named by input.request.
request_actions := {"matter_request_recipient", "matter_approve_recipient", "legal_hold_place", "legal_hold_lift"}

# has_role holds when the source holds role: input.source.roles (filled by
# the gateway from the people directory and the role lists), or
# data.data.roles[role] read directly (for inputs not enriched by it).
has_role(role) if role in object.get(source, "roles", [])

has_role(role) if {
	some e in data.data.roles[role]
	wall_matches(e, object.get(source, "id", ""))
}

# in_owner holds when the source belongs to the matter's owning organisation.
in_owner if source.trust_domain == matter_owner

request_denies contains {
	"code": "matter.not_owner",
	"message": sprintf("%s is not a member of %s, which owns matter %s: only its people may %s", [
		who(source), matter_owner, matter_id, request_verb[action],
	]),
} if {
	input.request != false # first: undefined for every other action, which ends the rule at once
	action in request_actions
	matter != false
	not in_owner
}

# request_verb says what each matter action does, in messages.
request_verb := {
	"matter_request_recipient": "ask for a recipient to be added to it",
	"matter_approve_recipient": "approve a recipient for it",
	"legal_hold_place": "place a legal hold on it",
	"legal_hold_lift": "lift its legal hold",
}

request_denies contains {
	"code": "request.invalid",
	"message": "a request to add a recipient must name the recipient (a SPIFFE ID, or a trust domain for a whole organisation)",
} if {
	input.request != false
	action in {"matter_request_recipient", "matter_approve_recipient"}
	object.get(request, "recipient", "") == ""
}

request_denies contains {
	"code": "org.unknown",
	"message": sprintf("the recipient %s belongs to %s, which is not a known organisation: ask your security team to add it to policies/data", [r, td]),
} if {
	input.request != false
	action in {"matter_request_recipient", "matter_approve_recipient"}
	r := object.get(request, "recipient", "")
	r != ""
	td := recipient_domain(r)
	not data.data.organisations[td]
}

# recipient_domain is the trust domain of a requested recipient: a SPIFFE ID
# or prefix ("spiffe://td/...", "spiffe://td"), or a bare trust domain.
recipient_domain(r) := split(trim_prefix(r, "spiffe://"), "/")[0]

request_denies contains {
	"code": "role.not_approver",
	"message": sprintf("%s is not an approver of %s: ask one of the approvers (a group mapped to approver in policies/data roles_from_groups, or roles.approver) to approve request %s", [
		who(source), matter_owner, object.get(request, "request_id", "?"),
	]),
} if {
	input.action == "matter_approve_recipient"
	not has_role("approver")
}

request_denies contains {
	"code": "four_eyes.self_approval",
	"message": sprintf("%s asked for request %s and cannot approve it too: adding a recipient to matter %s needs a second person", [
		who(source), object.get(request, "request_id", "?"), matter_id,
	]),
} if {
	input.action == "matter_approve_recipient"
	source.id == object.get(request, "requested_by", "")
}

request_denies contains {
	"code": "request.invalid",
	"message": "an approval must name who asked for the recipient (requested_by), to keep the two people apart",
} if {
	input.action == "matter_approve_recipient"
	object.get(request, "requested_by", "") == ""
}

request_denies contains {
	"code": "role.not_records_manager",
	"message": sprintf("%s may not place or lift legal holds on matter %s: only records managers and security administrators of %s may (roles in policies/data)", [
		who(source), matter_id, matter_owner,
	]),
} if {
	input.request != false
	action in {"legal_hold_place", "legal_hold_lift"}
	not has_role("records_manager")
	not has_role("security_admin")
}

request_denies contains {
	"code": "request.invalid",
	"message": sprintf("a legal hold needs a reason, recorded in the audit log (%s)", [action]),
} if {
	input.action == "legal_hold_place"
	object.get(request, "reason", "") == ""
}
