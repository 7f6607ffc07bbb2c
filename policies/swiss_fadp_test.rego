package lexgate_test

test_fadp_swiss_subjects_to_ph_without_scc_denied if {
	d := decide(breq("send", party("ch.test"), [party("lpo.test")], pd(["CH"]), t0))
	d.reasons == [{
		"code": "fadp.no_transfer_mechanism",
		"message": "Personal data of Swiss subjects may go to PH only under SCCs or BCRs (PH is not on the Swiss adequacy list); between ch.test and lpo.test no BCR or SCC between them is on file",
	}]
}

test_fadp_swiss_subjects_to_adequate_allowed if {
	decide(breq("send", party("ch.test"), [party("uk.test")], pd(["CH"]), t0)).allow == true
}
