package lexgate_test

test_health_without_baa_denied if {
	d := decide(req("send", "law.test", ["lpo.test"], ["health"], t0))
	d.allow == false
	d.reasons == [{
		"code": "hipaa.no_baa",
		"message": "lpo.test cannot receive health data from law.test without a Business Associate Agreement (BAA): no BAA between them is on file",
	}]
}

test_health_with_baa_allowed if {
	decide(req("send", "law.test", ["care.test"], ["health"], t0)).allow == true
}

test_health_with_expired_baa_denied if {
	d := decide(req("send", "law.test", ["care.test"], ["health"], "2027-01-01T00:00:00Z"))
	messages(d) == {"care.test cannot receive health data from law.test without a Business Associate Agreement (BAA): the BAA expired on 2026-12-31"}
}

test_health_inside_one_organisation_allowed if {
	decide(req("send", "law.test", ["law.test"], ["health"], t0)).allow == true
}

test_other_labels_need_no_baa if {
	decide(req("send", "law.test", ["lpo.test"], ["personal-data", "privileged"], t0)).allow == true
}

test_receive_health_rechecks_baa if {
	# lpo.test receives a health transfer that law.test sent.
	d := decide(req("receive", "lpo.test", ["law.test"], ["health"], t0))
	d.allow == false
	messages(d) == {"lpo.test cannot receive health data from law.test without a Business Associate Agreement (BAA): no BAA between them is on file"}
}

test_receive_health_after_baa_lapsed_denied if {
	decide(req("receive", "care.test", ["law.test"], ["health"], t0)).allow == true
	codes(decide(req("receive", "care.test", ["law.test"], ["health"], "2027-01-01T00:00:00Z"))) == {"hipaa.no_baa"}
}

test_receive_health_without_sender_denied if {
	d := decide(req("receive", "care.test", [], ["health"], t0))
	d.allow == false
	codes(d) == {"hipaa.no_baa"}
}
