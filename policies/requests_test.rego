# Tests of the matter actions: four-eyes recipients, legal holds and
# destruction certificates.
package lexgate_test

# act makes a matter action by the identity at path of td.
act(action, td, path, r) := {
	"version": 1, "action": action, "time": t0,
	"source": at(td, path), "request": r,
}

add_fr := {"matter": "M-1", "recipient": "fr.test", "request_id": "R1", "requested_by": "spiffe://law.test/user", "reason": "second review team"}

test_request_recipient_by_owner_member if {
	decide(act("matter_request_recipient", "law.test", "/paralegal/pam", add_fr)).allow == true
}

test_request_recipient_by_outsider_refused if {
	d := decide(act("matter_request_recipient", "lpo.test", "/team/x", add_fr))
	d.reasons == [{"code": "matter.not_owner", "message": "spiffe://lpo.test/team/x is not a member of law.test, which owns matter M-1: only its people may ask for a recipient to be added to it"}]
}

test_request_recipient_needs_known_matter_and_recipient if {
	codes(decide(act("matter_request_recipient", "law.test", "/user", object.union(add_fr, {"matter": "M-404"})))) == {"matter.unknown"}
	codes(decide(act("matter_request_recipient", "law.test", "/user", object.remove(add_fr, ["matter"])))) == {"matter.missing"}
	codes(decide(act("matter_request_recipient", "law.test", "/user", object.union(add_fr, {"recipient": ""})))) == {"request.invalid"}
	codes(decide(act("matter_request_recipient", "law.test", "/user", object.union(add_fr, {"recipient": "spiffe://nowhere.test/x"})))) == {"org.unknown"}
}

test_approve_by_another_approver if {
	decide(act("matter_approve_recipient", "law.test", "/partner/pat", add_fr)).allow == true
}

test_four_eyes_self_approval_refused if {
	# law.test/user is an approver, but asked for this recipient itself.
	d := decide(act("matter_approve_recipient", "law.test", "/user", add_fr))
	d.reasons == [{"code": "four_eyes.self_approval", "message": "spiffe://law.test/user asked for request R1 and cannot approve it too: adding a recipient to matter M-1 needs a second person"}]
}

test_approve_by_non_approver_refused if {
	d := decide(act("matter_approve_recipient", "law.test", "/paralegal/pam", add_fr))
	codes(d) == {"role.not_approver"}
}

test_approve_needs_the_requester if {
	codes(decide(act("matter_approve_recipient", "law.test", "/partner/pat", object.remove(add_fr, ["requested_by"])))) == {"request.invalid"}
}

test_approve_by_approver_of_another_organisation_refused if {
	d := decide(act("matter_approve_recipient", "lpo.test", "/partner/pat", add_fr))
	codes(d) == {"matter.not_owner", "role.not_approver"}
}

hold := {"matter": "M-1", "reason": "litigation hold"}

test_legal_hold_by_records_manager if {
	decide(act("legal_hold_place", "law.test", "/records/rita", hold)).allow == true
	decide(act("legal_hold_lift", "law.test", "/records/rita", {"matter": "M-1"})).allow == true
	decide(act("legal_hold_place", "law.test", "/security", hold)).allow == true
}

test_legal_hold_by_others_refused if {
	d := decide(act("legal_hold_place", "law.test", "/paralegal/pam", hold))
	d.reasons == [{"code": "role.not_records_manager", "message": "spiffe://law.test/paralegal/pam may not place or lift legal holds on matter M-1: only records managers and security administrators of law.test may (roles in policies/data)"}]
	codes(decide(act("legal_hold_lift", "lpo.test", "/records/rita", hold))) == {"matter.not_owner", "role.not_records_manager"}
}

test_legal_hold_needs_a_reason if {
	codes(decide(act("legal_hold_place", "law.test", "/records/rita", {"matter": "M-1"}))) == {"request.invalid"}
}

test_fetch_certificate_for_known_organisations if {
	decide({"version": 1, "action": "fetch_certificate", "time": t0, "source": party("lpo.test")}).allow == true
	codes(decide({"version": 1, "action": "fetch_certificate", "time": t0, "source": party("nowhere.test")})) == {"org.unknown"}
}
