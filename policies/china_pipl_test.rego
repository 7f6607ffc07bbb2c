package lexgate_test

test_pipl_under_standard_contract_allowed if {
	decide(breq("send", party("cn.test"), [party("lpo.test")], pd(["CN"]), t0)).allow == true
}

test_pipl_without_contract_denied if {
	d := decide(breq("send", party("cn.test"), [party("law.test")], pd(["CN"]), t0))
	codes(d) == {"pipl.no_transfer_mechanism"}
	messages(d) == {"Personal information of subjects in China may go to DE only under the CAC standard contract (PIPL-SCC) or to a PIPL-certified recipient; between cn.test and law.test no PIPL-SCC between them is on file"}
}

test_pipl_certified_recipient_allowed if {
	decide(breq("send", party("cn.test"), [party("cert.test")], pd(["CN"]), t0)).allow == true
}
