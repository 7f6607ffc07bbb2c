package lexgate_test

test_limits_size_and_files_of_recipient if {
	big := {"matter": "M-1", "labels": [], "size": 1001, "file_count": 11}
	d := decide(breq("send", party("law.test"), [party("small.test")], big, t0))
	d.reasons == [
		{"code": "limits.file_count", "message": "the bundle has 11 files, over the limit of 10 files of small.test"},
		{"code": "limits.size", "message": "the bundle is 1001 bytes, over the 1000-byte limit of small.test"},
	]
	decide(breq("send", party("law.test"), [party("small.test")], {"matter": "M-1", "labels": [], "size": 1000, "file_count": 10}, t0)).allow == true
}

test_limits_of_sender_apply if {
	codes(decide(breq("send", party("small.test"), [party("law.test")], {"matter": "M-1", "labels": [], "size": 5000}, t0))) == {"limits.size"}
}

night := at("multi.test", "/ny/night/carol")

test_hours_within_allowed if {
	# Monday 2026-06-01 10:00 in New York is 14:00 UTC.
	decide(breq("send", night, [party("law.test")], {"matter": "M-1", "labels": []}, "2026-06-01T14:00:00Z")).allow == true
}

test_hours_outside_denied if {
	d := decide(breq("send", night, [party("law.test")], {"matter": "M-1", "labels": []}, "2026-06-01T22:00:00Z"))
	d.reasons == [{
		"code": "hours.outside",
		"message": "Night desk can only send material during its business hours (Mon Tue Wed Thu Fri, 09:00-17:30 America/New_York); it is Mon 18:00 there",
	}]
	codes(decide(breq("receive", night, [party("law.test")], {"matter": "M-1", "labels": []}, "2026-06-06T14:00:00Z"))) == {"hours.outside"}
}

test_hours_end_is_exclusive if {
	decide(breq("send", night, [party("law.test")], {"matter": "M-1", "labels": []}, "2026-06-01T21:29:59Z")).allow == true
	decide(breq("send", night, [party("law.test")], {"matter": "M-1", "labels": []}, "2026-06-01T21:30:00Z")).allow == false
}
