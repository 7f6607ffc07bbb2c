package lexgate_test

test_retention_from_destination if {
	o := decide(req("send", "law.test", ["lpo.test"], [], t0)).obligations
	o.retention_days == 60
	o.max_downloads == 3
	o.expires_at == "2026-07-31T10:00:00Z"
}

test_defaults if {
	o := decide(req("send", "law.test", ["old.test"], [], "2026-01-01T00:00:00Z")).obligations
	o.retention_days == 30
	o.max_downloads == 5
	o.expires_at == "2026-01-31T00:00:00Z"
}

test_shortest_retention_of_several_destinations if {
	o := decide(req("send", "law.test", ["lpo.test", "care.test"], [], t0)).obligations
	o.retention_days == 30
	o.max_downloads == 3
}

test_without_destinations_source_retention if {
	decide(req("register_key", "law.test", [], [], t0)).obligations.retention_days == 90
}

test_obligations_defined_without_time if {
	o := data.lexgate.obligations with input as {}
		with data.data.organisations as orgs
	o.expires_at == ""
	o.retention_days == 30
}

test_refused_decision_has_no_obligations if {
	d := decide({})
	d.allow == false
	d.obligations == {}
}
