package lexgate_test

m42 := {"matter": "M-42", "labels": []}

test_wall_blocks_team_member if {
	d := decide(breq("send", party("law.test"), [at("lpo.test", "/team/mergers/eve")], m42, t0))
	d.reasons == [{
		"code": "wall.blocked",
		"message": "spiffe://lpo.test/team/mergers/eve is behind an ethical wall for matter M-42 (spiffe://lpo.test/team/mergers/) and must never receive its material",
	}]
}

test_wall_blocks_whole_organisation_and_person if {
	codes(decide(breq("send", party("law.test"), [party("care.test")], m42, t0))) == {"wall.blocked"}
	codes(decide(breq("send", party("law.test"), [at("law.test", "/user2")], m42, t0))) == {"wall.blocked"}
}

test_wall_leaves_others_and_other_matters_alone if {
	decide(breq("send", party("law.test"), [at("lpo.test", "/team/tax/eve")], m42, t0)).allow == true
	decide(breq("send", party("law.test"), [at("law.test", "/user22")], m42, t0)).allow == true
	decide(breq("send", party("law.test"), [party("care.test")], {"matter": "M-43", "labels": []}, t0)).allow == true
}

test_wall_checked_on_receive if {
	codes(decide(breq("receive", at("lpo.test", "/team/mergers/eve"), [party("law.test")], m42, t0))) == {"wall.blocked"}
}

test_wall_multi_recipient_names_only_the_walled_one if {
	d := decide(breq("send", party("law.test"), [party("lpo.test"), party("care.test"), party("jp.test")], m42, t0))
	d.allow == false
	count(d.reasons) == 1
	startswith(d.reasons[0].message, "spiffe://care.test/user is behind an ethical wall")
}
