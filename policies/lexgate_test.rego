package lexgate_test

test_decision_is_defined_for_empty_input if {
	d := decide({})
	d.allow == false
	codes(d) == {"action.unknown", "input.version", "input.time", "org.unknown"}
}

test_unknown_action_denied if {
	d := decide(req("delete_everything", "law.test", [], [], t0))
	d.allow == false
	codes(d) == {"action.unknown"}
	messages(d) == {`the action "delete_everything" is not allowed by policy`}
}

test_sftp_login_allowed_for_known_org if {
	decide(req("sftp_login", "law.test", [], [], t0)).allow
}

test_sftp_login_denied_for_unknown_org if {
	d := decide(req("sftp_login", "nobody.test", [], [], t0))
	d.allow == false
	codes(d) == {"org.unknown"}
}

test_wrong_version_denied if {
	x := object.union(req("register_key", "law.test", [], [], t0), {"version": 2})
	d := decide(x)
	d.allow == false
	codes(d) == {"input.version"}
}

test_missing_time_denied if {
	x := object.remove(req("list_inbox", "law.test", [], [], t0), {"time"})
	codes(decide(x)) == {"input.time"}
}

test_key_and_inbox_actions_allowed_for_known_org if {
	every act in ["register_key", "lookup_key", "list_inbox", "ack", "receive"] {
		d := decide(req(act, "lpo.test", [], [], t0))
		d.allow == true
		d.reasons == []
	}
}

test_key_and_inbox_actions_denied_for_unknown_org if {
	every act in ["register_key", "lookup_key", "list_inbox", "ack", "receive"] {
		d := decide(req(act, "evil.test", [], [], t0))
		d.allow == false
		codes(d) == {"org.unknown"}
	}
}

test_reasons_are_sorted if {
	d := decide({})
	d.reasons == sort(d.reasons)
}
