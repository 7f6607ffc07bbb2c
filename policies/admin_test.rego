package lexgate_test

test_admin_allowed_for_admins_only if {
	decide(breq("admin", at("law.test", "/security"), [], {}, t0)).allow == true
	d := decide(req("admin", "law.test", [], [], t0))
	d.reasons == [{
		"code": "admin.not_admin",
		"message": "spiffe://law.test/user is not a policy administrator: ask your security team to add it to the admins in policies/data",
	}]
}

test_explain_allowed_for_known_organisations if {
	decide(req("explain", "lpo.test", [], [], t0)).allow == true
	codes(decide(req("explain", "evil.test", [], [], t0))) == {"org.unknown"}
}
