package lexgate_test

test_uk_subjects_to_ph_under_idta_allowed if {
	decide(breq("send", party("uk.test"), [party("lpo.test")], pd(["GB"]), "2026-05-31T12:00:00Z")).allow == true
}

test_uk_idta_expired_denied if {
	d := decide(breq("send", party("uk.test"), [party("lpo.test")], pd(["GB"]), t0))
	d.reasons == [{
		"code": "uk_gdpr.no_transfer_mechanism",
		"message": "Personal data of UK subjects may go to PH only under an IDTA or the UK Addendum (PH has no UK adequacy regulations); between uk.test and lpo.test the IDTA expired on 2026-05-31",
	}]
}

test_uk_subjects_to_eea_and_adequate_allowed if {
	decide(breq("send", party("uk.test"), [party("law.test")], pd(["GB"]), t0)).allow == true
	decide(breq("send", party("uk.test"), [party("jp.test")], pd(["UK"]), t0)).allow == true
}
