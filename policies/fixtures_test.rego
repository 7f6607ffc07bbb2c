# Fixtures shared by the unit tests: a small world of organisations and
# agreements that does not change when policies/data does.
package lexgate_test

orgs := {
	"law.test": {"name": "Law", "jurisdiction": "DE", "eu_eea": true, "retention_days": 90},
	"lpo.test": {"name": "LPO", "jurisdiction": "PH", "eu_eea": false, "retention_days": 60, "max_downloads": 3, "certifications": ["ISO 27001"]},
	"old.test": {"name": "Old", "jurisdiction": "CO", "eu_eea": false},
	"care.test": {"name": "Care", "jurisdiction": "US", "eu_eea": false},
	"new.test": {"name": "New", "jurisdiction": "IN", "eu_eea": false},
	"none.test": {"name": "None", "jurisdiction": "BR", "eu_eea": false},
	"fr.test": {"name": "FR", "jurisdiction": "FR"},
	"jp.test": {"name": "JP", "jurisdiction": "JP"},
	"kr.test": {"name": "KR", "jurisdiction": "KR"},
	"uk.test": {"name": "UK", "jurisdiction": "GB", "certifications": ["ISO 27001"]},
	"ch.test": {"name": "CH", "jurisdiction": "CH"},
	"cn.test": {"name": "CN", "jurisdiction": "CN"},
	"cert.test": {"name": "Cert", "jurisdiction": "SG", "certifications": ["PIPL certification"]},
	"ir.test": {"name": "IR", "jurisdiction": "IR"},
	"small.test": {"name": "Small", "jurisdiction": "DE", "max_bundle_bytes": 1000, "max_files": 10},
	"multi.test": {
		"name": "Multi", "jurisdiction": "DE", "certifications": [],
		"sites": [
			{"name": "Berlin", "paths": ["/"], "certifications": ["ISO 27001"]},
			{"name": "New York", "paths": ["/ny/"], "jurisdiction": "US"},
			{"name": "Night desk", "paths": ["/ny/night/"], "jurisdiction": "US", "business_hours": {"time_zone": "America/New_York", "days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "from": "09:00", "to": "17:30"}},
		],
	},
}

agreements := [
	{"parties": ["law.test", "lpo.test"], "kind": "NDA", "signed": "2025-01-01", "expires": "2027-12-31"},
	{"parties": ["old.test", "law.test"], "kind": "NDA", "signed": "2024-01-01", "expires": "2026-03-31"},
	{"parties": ["law.test", "care.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["law.test", "care.test"], "kind": "BAA", "signed": "2025-01-01", "expires": "2026-12-31"},
	{"parties": ["law.test", "care.test"], "kind": "SCC", "signed": "2025-01-01", "version": "2021/914", "module": 1, "tia": {"reference": "TIA-CARE", "date": "2026-01-10"}},
	{"parties": ["law.test", "new.test"], "kind": "DPA", "signed": "2026-07-01", "expires": "2028-06-30"},
	{
		"parties": ["law.test", "lpo.test"], "kind": "SCC", "signed": "2025-01-01", "expires": "2026-12-31",
		"version": "2021/914", "module": 2, "roles": {"law.test": "controller", "lpo.test": "processor"},
		"tia": {"reference": "TIA-LPO", "date": "2026-01-10"},
	},
	{"parties": ["law.test", "jp.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["law.test", "kr.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["law.test", "fr.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["law.test", "uk.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["uk.test", "lpo.test"], "kind": "IDTA", "signed": "2025-01-01", "expires": "2026-05-31", "tia": {"reference": "TRA-UK", "date": "2026-01-10"}},
	{"parties": ["uk.test", "lpo.test"], "kind": "DPA", "signed": "2025-01-01"},
	{"parties": ["uk.test", "jp.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["ch.test", "lpo.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["ch.test", "uk.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["cn.test", "lpo.test"], "kind": "PIPL-SCC", "signed": "2025-01-01"},
	{"parties": ["cn.test", "law.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["cn.test", "cert.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["law.test", "ir.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["law.test", "small.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["law.test", "multi.test"], "kind": "NDA", "signed": "2025-01-01"},
	{"parties": ["multi.test", "multi.test"], "kind": "BCR", "signed": "2025-01-01", "expires": "2026-06-30", "covers": {"countries": ["US"]}, "tia": {"reference": "TIA-BCR", "date": "2026-01-10"}},
]

# jurisdictions are the fixture lists: a few EU/EEA members and adequacy
# decisions, one of them (KR) taking effect after t0.
jurisdictions := {
	"eu_eea": ["DE", "FR", "IE"],
	"gdpr_adequacy": {"JP": "2019-01-23", "GB": "2021-06-28", "CH": "2000-07-26", "KR": "2026-07-01"},
	"uk_adequacy": {"JP": "2021-01-01", "CH": "2021-01-01"},
	"ch_adequacy": {"GB": "2023-09-01"},
	"embargoed": {"IR": "1995-05-06", "KP": "2008-06-26"},
}

# walls: matter M-42 is walled off from a team, an organisation and one person.
walls := {"M-42": ["spiffe://lpo.test/team/mergers/", "spiffe://care.test", "spiffe://law.test/user2"]}

# admins of the fixture world.
admins := ["spiffe://law.test/security"]

# roles of the fixture world: approvers, records managers, security admins.
roles := {
	"approver": ["spiffe://law.test/partner/", "spiffe://law.test/user"],
	"records_manager": ["spiffe://law.test/records/"],
	"security_admin": ["spiffe://law.test/security"],
}

# vocabulary is the fixture world's closed set of labels.
vocabulary := {
	"privileged": "privileged",
	"client-confidential": "client confidential",
	"personal-data": "personal data",
	"special-category": "special categories",
	"health": "health",
	"phi": "protected health information",
	"financial": "financial",
	"export-controlled": "export-controlled",
}

# all_orgs are the trust domains of every fixture organisation.
all_orgs := sort([td | some td, _ in orgs])

# anyone is a matter of law.test open to every fixture organisation, with
# the client's consent to work anywhere: the matters the tests of the
# other rules use, so that only those rules decide.
anyone(jurisdictions) := {
	"client": "Client",
	"owner": "law.test",
	"data_subject_jurisdictions": jurisdictions,
	"client_consents": [{"reference": "C-ALL", "given": "2020-01-01", "organisations": all_orgs}],
	"permitted_recipients": {"organisations": all_orgs},
}

# matters of the fixture world. M-1 (req, pd) has US data subjects, so that
# a bundle of personal data always has a known jurisdiction; M-2, M-3 and
# M-42 have none of their own. The matter tests add their own (matters_test.rego).
matters := {
	"M-1": anyone(["US"]),
	"M-2": anyone([]),
	"M-3": anyone([]),
	"M-42": anyone([]),
	"M-43": anyone([]),
}

# party makes a party of a trust domain.
party(td) := {"id": sprintf("spiffe://%s/user", [td]), "trust_domain": td, "path": "/user"}

# req makes a version 1 input.
req(act, from, to, labels, t) := {
	"version": 1,
	"action": act,
	"time": t,
	"source": party(from),
	"destinations": [party(d) | some d in to],
	"bundle": {"matter": "M-1", "labels": labels},
}

# at makes a party with a SPIFFE path in a trust domain.
at(td, path) := {"id": sprintf("spiffe://%s%s", [td, path]), "trust_domain": td, "path": path}

# breq makes a version 1 input from parties and a whole bundle.
breq(act, from, to, b, t) := {
	"version": 1,
	"action": act,
	"time": t,
	"source": from,
	"destinations": to,
	"bundle": b,
}

# decide evaluates the decision in the fixture world.
decide(x) := decide_world(x, {})

# decide_with evaluates the decision in the fixture world with matters ms.
decide_with(x, ms) := decide_world(x, {"matters": ms})

# decide_world evaluates the decision in the fixture world, with the
# documents of w (organisations, agreements, matters, settings...) in place
# of the fixture's.
decide_world(x, w) := d if {
	d := data.lexgate.decision with input as x
		with data.data.organisations as object.get(w, "organisations", orgs)
		with data.data.agreements as object.get(w, "agreements", agreements)
		with data.data.jurisdictions as object.get(w, "jurisdictions", jurisdictions)
		with data.data.ethical_walls as walls
		with data.data.admins as admins
		with data.data.matters as object.get(w, "matters", matters)
		with data.data.labels as vocabulary
		with data.data.roles as roles
		with data.data.settings as object.get(w, "settings", {})
}

# pd is a personal-data bundle about subjects in regions.
pd(regions) := {"matter": "M-1", "labels": ["personal-data"], "data_subject_regions": regions}

# codes are the reason codes of a decision.
codes(d) := {r.code | some r in d.reasons}

# messages are the reason messages of a decision.
messages(d) := {r.message | some r in d.reasons}

t0 := "2026-06-01T10:00:00Z"
