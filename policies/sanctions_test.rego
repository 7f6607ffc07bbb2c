package lexgate_test

test_sanctions_destination_embargoed if {
	d := decide(req("send", "law.test", ["ir.test"], [], t0))
	d.reasons == [{
		"code": "sanctions.embargoed",
		"message": "spiffe://ir.test/user is in IR, which is under embargo: lexgate refuses every action to or from it",
	}]
}

test_sanctions_source_embargoed_for_every_action if {
	every act in ["register_key", "list_inbox", "sftp_login", "send"] {
		"sanctions.embargoed" in codes(decide(req(act, "ir.test", ["law.test"], [], t0)))
	}
}
