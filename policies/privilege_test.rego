package lexgate_test

priv := {"matter": "M-1", "labels": ["privileged"]}

test_privilege_to_certified_site_with_nda_allowed if {
	decide(breq("send", party("law.test"), [party("lpo.test")], priv, t0)).allow == true
}

test_privilege_needs_iso27001 if {
	d := decide(breq("send", party("law.test"), [party("jp.test")], priv, t0))
	d.reasons == [{
		"code": "privilege.no_iso27001",
		"message": "spiffe://jp.test/user cannot receive privileged material: its site does not hold ISO 27001",
	}]
}

test_privilege_site_certification_counts if {
	berlin := at("multi.test", "/paralegal/bob")
	ny := at("multi.test", "/ny/analyst")
	decide(breq("send", party("law.test"), [berlin], priv, t0)).allow == true
	messages(decide(breq("send", party("law.test"), [ny], priv, t0))) == {"spiffe://multi.test/ny/analyst cannot receive privileged material: its site (New York) does not hold ISO 27001"}
}

test_privilege_needs_nda_in_force if {
	# uk.test holds ISO 27001 but has only an IDTA and a DPA with lpo.test.
	d := decide(breq("send", party("uk.test"), [party("lpo.test")], priv, "2026-05-01T00:00:00Z"))
	d.reasons == [{
		"code": "privilege.no_nda",
		"message": "lpo.test cannot receive privileged material from uk.test without an NDA: no NDA between them is on file",
	}]
}
