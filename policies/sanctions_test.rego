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

test_missing_jurisdiction_list_refuses_every_action if {
	every name in data.lexgate.jurisdiction_lists {
		every act in ["send", "receive", "list_inbox"] {
			d := data.lexgate.decision with input as req(act, "law.test", ["lpo.test"], [], t0)
				with data.data.organisations as orgs
				with data.data.agreements as agreements
				with data.data.jurisdictions as object.remove(jurisdictions, [name])
			not d.allow
			"policy.data_missing" in codes(d)
		}
	}
}

test_shipped_jurisdiction_lists_are_all_there if {
	every name in data.lexgate.jurisdiction_lists {
		data.data.jurisdictions[name]
	}
}

# screening_clear lets the screening rule skip screening_reason: it may hold
# only for a record screening_reason finds nothing wrong with.
test_screening_clear_only_where_screening_reason_finds_nothing if {
	records := [
		{}, {"date": "2025-01-01", "result": "clear"}, {"date": "2026-05-01", "result": "clear"},
		{"date": "2026-05-01", "result": "hit"}, {"date": "2026-05-01"}, {"date": false, "result": "clear"},
	]
	cleared := {i |
		some i, s in records
		data.lexgate.screening_clear(s) with input.time as "2026-06-01T10:00:00Z"
			with data.data.settings.screening_max_age_days as 90
	}
	no_reason := {i |
		some i, s in records
		not data.lexgate.screening_reason({"trust_domain": "x.test"}, s) with input.time as "2026-06-01T10:00:00Z"
			with data.data.settings.screening_max_age_days as 90
	}
	cleared == {2}
	cleared - no_reason == set()
}
