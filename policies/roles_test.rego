# Tests of the roles of people: input.source.roles, filled by the gateway
# from the people directory (data/people.json) and data/access.json, decides
# who approves, who places legal holds and who revokes.
package lexgate_test

# person is a person of td signed in with lex login, holding roles.
person(td, sub, roles) := object.union(at(td, sprintf("/person/%s", [sub])), {"roles": roles})

# pact makes a matter action by a person.
pact(action, p, r) := {"version": 1, "action": action, "time": t0, "source": p, "request": r}

test_person_approver_approves if {
	decide(pact("matter_approve_recipient", person("law.test", "dana", ["approver", "attorney"]), add_fr)).allow == true
}

test_person_paralegal_cannot_approve if {
	d := decide(pact("matter_approve_recipient", person("law.test", "pat", ["paralegal"]), add_fr))
	codes(d) == {"role.not_approver"}
	d.reasons[0].message == "spiffe://law.test/person/pat is not an approver of law.test: ask one of the approvers (a group mapped to approver in policies/data roles_from_groups, or roles.approver) to approve request R1"
}

test_person_without_roles_cannot_approve if {
	codes(decide(pact("matter_approve_recipient", person("law.test", "nora", []), add_fr))) == {"role.not_approver"}
	codes(decide(pact("matter_approve_recipient", at("law.test", "/person/nora"), add_fr))) == {"role.not_approver"}
}

test_person_approver_still_needs_four_eyes_and_owner if {
	self := object.union(add_fr, {"requested_by": "spiffe://law.test/person/dana"})
	codes(decide(pact("matter_approve_recipient", person("law.test", "dana", ["approver"]), self))) == {"four_eyes.self_approval"}
	codes(decide(pact("matter_approve_recipient", person("lpo.test", "dana", ["approver"]), add_fr))) == {"matter.not_owner"}
}

test_person_records_manager_places_and_lifts_hold if {
	rita := person("law.test", "rita", ["records_manager"])
	decide(pact("legal_hold_place", rita, hold)).allow == true
	decide(pact("legal_hold_lift", rita, {"matter": "M-1"})).allow == true
}

test_person_security_admin_places_hold if {
	decide(pact("legal_hold_place", person("law.test", "sam", ["security_admin"]), hold)).allow == true
}

test_person_paralegal_cannot_place_hold if {
	pat := person("law.test", "pat", ["paralegal", "attorney"])
	codes(decide(pact("legal_hold_place", pat, hold))) == {"role.not_records_manager"}
	codes(decide(pact("legal_hold_lift", pat, {"matter": "M-1"}))) == {"role.not_records_manager"}
}

# admin_op makes an admin-plane request for op by source p.
admin_op(p, op) := {"version": 1, "action": "admin", "time": t0, "source": p, "admin": {"op": op, "transfer_id": "T1"}}

# law.test/security is an administrator (admins) and a security admin (roles).
test_security_admin_revokes if {
	every op in ["revoke", "unrevoke", "quarantine", "release"] {
		decide(admin_op(at("law.test", "/security"), op)).allow == true
	}
}

test_person_security_admin_who_is_admin_revokes if {
	decide(admin_op(object.union(at("law.test", "/security"), {"roles": ["security_admin"]}), "revoke")).allow == true
}

test_admin_without_security_admin_role_cannot_revoke if {
	every op in ["revoke", "unrevoke", "quarantine", "release"] {
		d := decide_admins(admin_op(at("law.test", "/ops/olga"), op), ["spiffe://law.test/ops/olga"])
		codes(d) == {"role.not_security_admin"}
	}

	# Other admin operations stay open to every administrator.
	decide_admins(admin_op(at("law.test", "/ops/olga"), "status"), ["spiffe://law.test/ops/olga"]).allow == true
	decide_admins({"version": 1, "action": "admin", "time": t0, "source": at("law.test", "/ops/olga")}, ["spiffe://law.test/ops/olga"]).allow == true
}

test_non_admin_cannot_revoke if {
	d := decide(admin_op(person("law.test", "pat", ["paralegal"]), "revoke"))
	codes(d) == {"admin.not_admin", "role.not_security_admin"}
}

# decide_admins evaluates the decision in the fixture world with admins as
# the administrators.
decide_admins(x, ads) := d if {
	d := decide(x) with data.lexgate_test.admins as ads
}
