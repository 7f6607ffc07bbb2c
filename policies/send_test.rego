package lexgate_test

test_send_with_agreement_in_force_allowed if {
	d := decide(req("send", "law.test", ["lpo.test"], ["privileged"], t0))
	d.allow == true
	d.reasons == []
}

test_send_within_own_organisation_allowed if {
	decide(req("send", "none.test", ["none.test"], [], t0)).allow == true
}

test_send_without_recipients_denied if {
	codes(decide(req("send", "law.test", [], [], t0))) == {"send.no_recipients"}
}

test_send_after_expiry_names_the_date if {
	d := decide(req("send", "law.test", ["old.test"], [], t0))
	d.allow == false
	d.reasons == [{
		"code": "agreement.not_in_force",
		"message": "old.test has no agreement in force with law.test: the NDA expired on 2026-03-31",
	}]
}

test_send_on_last_day_allowed_and_just_after_denied if {
	decide(req("send", "law.test", ["old.test"], [], "2026-03-31T23:59:59Z")).allow == true
	decide(req("send", "law.test", ["old.test"], [], "2026-04-01T00:00:00Z")).allow == false
}

test_send_before_signing_denied if {
	d := decide(req("send", "law.test", ["new.test"], [], t0))
	messages(d) == {"new.test has no agreement in force with law.test: the DPA only takes effect on 2026-07-01"}
}

test_send_without_any_agreement_denied if {
	d := decide(req("send", "law.test", ["none.test"], [], t0))
	d.reasons == [{
		"code": "agreement.none",
		"message": "none.test has no agreement in force with law.test: no agreement between them is on file",
	}]
}

test_send_to_several_recipients_names_the_failing_one if {
	d := decide(req("send", "law.test", ["lpo.test", "old.test", "care.test"], [], t0))
	d.allow == false
	count(d.reasons) == 1
	contains(d.reasons[0].message, "old.test has no agreement")
}

test_send_in_other_direction_uses_same_agreement if {
	decide(req("send", "lpo.test", ["law.test"], [], t0)).allow == true
}
