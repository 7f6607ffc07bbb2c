# Fixtures shared by the unit tests: a small world of organisations and
# agreements that does not change when policies/data does.
package lexgate_test

orgs := {
	"law.test": {"name": "Law", "jurisdiction": "DE", "eu_eea": true, "retention_days": 90},
	"lpo.test": {"name": "LPO", "jurisdiction": "PH", "eu_eea": false, "retention_days": 60, "max_downloads": 3},
	"old.test": {"name": "Old", "jurisdiction": "CO", "eu_eea": false},
	"care.test": {"name": "Care", "jurisdiction": "US", "eu_eea": false},
	"new.test": {"name": "New", "jurisdiction": "IN", "eu_eea": false},
	"none.test": {"name": "None", "jurisdiction": "BR", "eu_eea": false},
}

agreements := [
	{"parties": ["law.test", "lpo.test"], "kind": "NDA", "signed": "2025-01-01", "expires": "2027-12-31"},
	{"parties": ["old.test", "law.test"], "kind": "NDA", "signed": "2024-01-01", "expires": "2026-03-31"},
	{"parties": ["law.test", "care.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["law.test", "care.test"], "kind": "BAA", "signed": "2025-01-01", "expires": "2026-12-31"},
	{"parties": ["law.test", "new.test"], "kind": "DPA", "signed": "2026-07-01", "expires": "2028-06-30"},
]

# party makes a party of a trust domain.
party(td) := {"id": sprintf("spiffe://%s/user", [td]), "trust_domain": td, "path": "/user"}

# req makes a version 1 input.
req(act, from, to, labels, t) := {
	"version": 1,
	"action": act,
	"time": t,
	"source": party(from),
	"destinations": [party(d) | some d in to],
	"bundle": {"labels": labels},
}

# decide evaluates the decision in the fixture world.
decide(x) := d if {
	d := data.lexgate.decision with input as x
		with data.data.organisations as orgs
		with data.data.agreements as agreements
}

# codes are the reason codes of a decision.
codes(d) := {r.code | some r in d.reasons}

# messages are the reason messages of a decision.
messages(d) := {r.message | some r in d.reasons}

t0 := "2026-06-01T10:00:00Z"
