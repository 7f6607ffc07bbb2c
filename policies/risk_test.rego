package lexgate_test

risky(act, score, signals) := object.union(breq(act, party("law.test"), [party("lpo.test")], {"matter": "M-1", "labels": []}, t0), {
	"risk_score": score,
	"risk": {"score": score, "signals": signals},
})

burst := [
	{"name": "volume_z", "value": 9.5, "flagged": true},
	{"name": "count_z", "value": 0.3, "flagged": false},
	{"name": "new_recipient_org", "value": 1, "flagged": true},
]

test_risk_high_refuses_send if {
	d := decide(risky("send", 85, burst))
	d.allow == false
	some r in d.reasons
	r.code == "risk.unusual"
	contains(r.message, "risk score 85 of 100: volume_z=9.5, new_recipient_org=1")
}

test_risk_high_refuses_receive if {
	codes(decide(risky("receive", 70, burst))) == {"risk.unusual"}
}

test_risk_below_threshold_allowed if {
	decide(risky("send", 69, burst)).allow == true
	decide(risky("send", 0, [])).allow == true
}

test_risk_other_actions_unaffected if {
	not "risk.unusual" in codes(decide(risky("register_key", 100, burst)))
}
