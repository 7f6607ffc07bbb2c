package lexgate

# Where a party is: its site, the jurisdiction whose law governs it, the
# certifications it holds, and the lists of jurisdictions (EU/EEA members,
# adequacy decisions, embargoes) in data/jurisdictions.json.
#
# The rules read these facts from the parties themselves (source and
# counterparties, lexgate.rego): p.organisation, p.site, p.jurisdiction and
# p.certifications. The gateway fills them in from this policy set's data
# (README.md, Input); for a party that comes without them (opa test, opa
# eval), with_facts works them out here from data.data. Both ways give the
# same facts.

# with_facts is party p with its facts: as given when the gateway enriched
# it, worked out from data.data otherwise, and as given when its
# organisation is unknown. other is the trust domain of the source for a
# counterparty, whose organisation then carries its agreements with the
# source's (as the gateway sends them), and null for the source.
with_facts(p, other) := p if {
	enriched(p)
} else := object.union(p, facts_in_data(p, other)) if {
	org(p)
} else := p

# enriched holds for a party the gateway filled in from this policy set's
# data (organisation, site, jurisdiction, certifications: README.md, Input).
enriched(p) if is_object(p.organisation)

# facts_in_data are the facts of a party of a known organisation, from
# data.data: the fields the gateway would have filled in.
facts_in_data(p, other) := object.union(
	{
		"organisation": object.union(org(p), {"agreements": ags |
			other != null
			ags := agreements_in_data(p.trust_domain, other)
		}),
		"jurisdiction": jurisdiction_in_data(p),
		"certifications": sort({c | some c in object.get(org(p), "certifications", [])} | {c |
			s := site_in_data(p)
			some c in object.get(s, "certifications", [])
		}),
	},
	{"site": s | s := site_in_data(p)},
)

# jurisdiction_in_data is the party's site's jurisdiction when the site sets
# one, else its organisation's.
jurisdiction_in_data(p) := j if {
	j := site_in_data(p).jurisdiction
} else := org(p).jurisdiction

# site_in_data finds a party's site in data.data.organisations: the site
# whose longest path prefix matches the party's SPIFFE path; undefined when
# no site matches.
site_in_data(p) := s if {
	path := object.get(p, "path", "")
	lengths := {count(pre) |
		some s in object.get(org(p), "sites", [])
		some pre in object.get(s, "paths", [])
		startswith(path, pre)
	}
	count(lengths) > 0
	best := max(lengths)
	some s in org(p).sites
	some pre in s.paths
	count(pre) == best
	startswith(path, pre)
}

# site is the site of a party (undefined when no site matches).
site(p) := p.site

# site_name names a party's site in messages ("" without one).
site_name(p) := object.get(p, ["site", "name"], "")

# jurisdiction is the ISO 3166-1 alpha-2 code governing a party: its
# site's when the site sets one, else its organisation's.
jurisdiction(p) := p.jurisdiction

# certifications a party holds: its organisation's and its site's.
certifications(p) := object.get(p, "certifications", [])

# eea holds when the jurisdiction (or "EU"/"EEA") is in the EU/EEA.
eea(j) if j in data.data.jurisdictions.eu_eea

eea(j) if j in {"EU", "EEA"}

# adequate_for holds when the adequacy list covers the recipient to: its
# country's entry is a date (the day its decision took effect) on or
# before today, or a dated entry {from, until, scope, requires, source} in
# force whose scope is "full", or "partial" or "certified" (the US Data
# Privacy Framework, Canada's PIPEDA sector) when to holds what the entry
# requires (entry.requires, among its certifications). Most destinations
# have no entry, and the one lookup settles them.
adequate_for(list, to) if {
	e := list[to.jurisdiction]
	adequacy_covers(e, to)
}

# adequacy_covers holds when adequacy entry e covers the recipient to.
adequacy_covers(e, to) if e <= today # a day (an object sorts after every string)

else if {
	is_object(e)
	e.scope == "full"
	entry_in_force(e)
} else if {
	is_object(e)
	e.scope in {"partial", "certified"}
	entry_in_force(e)
	e.requires in object.get(to, "certifications", [])
}

# entry_in_force holds for a dated entry in force today: from its `from`
# day through its `until` day (UTC; no `until`: open-ended).
entry_in_force(e) if {
	e.from <= today
	not entry_lapsed(e)
}

# entry_lapsed holds when today is after a dated entry's `until` day.
entry_lapsed(e) if e.until < today

# embargoed holds when j is under embargo at input.time.
embargoed(j) if data.data.jurisdictions.embargoed[j] <= today

# today is the day of the request, YYYY-MM-DD in UTC. The data files give
# days in that form, which sorts as it reads, so rules compare them with
# today as strings rather than parse each one (the gateway refuses data
# whose dates are not YYYY-MM-DD: lex policy check).
today := time.format([now, "UTC", "2006-01-02"])

# flows are the movements of a bundle an action makes, as [from, to]
# parties: a send moves it from the source to each recipient; a receive
# moves it from its sender (the counterparty) to the source. (One array made
# once per decision: as a partial set rule, it cost 19 more allocations.)
flows := [[source, p] | some p in counterparties] if {
	input.action == "send"
} else := [[p, source] | some p in counterparties] if {
	input.action == "receive"
} else := []

# recipient_flows are the flows whose receiver (`to`) is of a known
# organisation; org_flows those whose exporter (`from`) is too; and
# cross_flows those of org_flows between two organisations. The rules
# that look only at such flows iterate these (each made once per
# decision) rather than each test the parties of every flow again.
recipient_flows := [[from, to] |
	some [from, to] in flows
	to.organisation != false
]

org_flows := [[from, to] |
	some [from, to] in recipient_flows
	from.organisation != false
]

cross_flows := [[from, to] |
	some [from, to] in org_flows
	from.trust_domain != to.trust_domain
]

# exporter_places are the jurisdictions of the exporters of the flows (the
# `from` of each): each one's site's or party's and its organisation's. A
# regime that keys on where the exporter is established (UK GDPR, FADP,
# PIPL) tests it once per decision before it looks at any flow, so a
# decision only walks the flows of the regimes that can apply.
exporter_places := places_of(source) if {
	input.action == "send" # flows: the source exports to each recipient
} else := {j | some p in counterparties; some j in places_of(p)} if {
	input.action == "receive" # each counterparty exports to the source
} else := set()

# places_of are party p's jurisdiction and its organisation's (null for
# one it lacks).
places_of(p) := {object.get(p, "jurisdiction", null), object.get(p, ["organisation", "jurisdiction"], null)}

# bundle is the bundle of the request ({} when absent).
bundle := object.get(input, "bundle", {})

# subject_regions are where the data subjects of the bundle live.
subject_regions := object.get(bundle, "data_subject_regions", [])

# personal_labels mark a bundle holding personal data.
personal_labels := {"personal-data", "special-category", "health", "phi"}

# personal holds when the bundle holds personal data: one of
# personal_labels among its effective labels (matters.rego: the matter's
# categories and the sender's labels).
personal if "personal-data" in labels

personal if "special-category" in labels

personal if "health" in labels

personal if "phi" in labels

# The rules that only personal data can break (GDPR, UK GDPR, FADP, PIPL,
# Art. 28) add to personal_denies, which counts only when the bundle holds
# personal data: for every other request one test settles them all.
deny contains r if {
	personal == true
	some r in personal_denies
}

# has_any_in_force holds when a and b have an agreement of one of kinds in force.
# (The export rules, gdpr.rego, uk_gdpr.rego, swiss_fadp.rego and
# china_pipl.rego, test count(in_force_kinds(a, b) & kinds) == 0, the same.)
has_any_in_force(a, b, kinds) if {
	some kind in in_force_kinds(a, b)
	kind in kinds
}

# jurisdiction_lists are the lists of data/jurisdictions.json the rules
# read. Without one, a rule that needs it cannot tell where data may go
# (GDPR and the UK and Swiss export rules, sanctions), so every action is
# refused until it is restored: a lost data file must not open the gate.
jurisdiction_lists := ["eu_eea", "gdpr_adequacy", "uk_adequacy", "ch_adequacy", "embargoed"]

# jurisdiction_lists_present holds when every list of jurisdiction_lists
# is there as an array or an object: the lists are named once more here
# so that a decision, whose data is intact, tests them all in one
# expression (a missing list leaves it undefined) rather than one by one
# in the rule below, which then looks for the missing ones.
jurisdiction_lists_present if {
	j := data.data.jurisdictions
	types := {type_name(j.eu_eea), type_name(j.gdpr_adequacy), type_name(j.uk_adequacy), type_name(j.ch_adequacy), type_name(j.embargoed)}
	types - {"array", "object"} == set()
}

deny contains {
	"code": "policy.data_missing",
	"message": sprintf("the policy data has no jurisdictions list %q (data/jurisdictions.json): lexgate refuses every action until it is restored", [name]),
} if {
	not jurisdiction_lists_present
	some name in jurisdiction_lists

	# The list is there, as an array or an object (of jurisdiction to date
	# or entry). Tested in one expression, not a function with a rule per
	# type: this runs on every decision. A missing list is read as null
	# (object.get): OPA evaluates the reference outside the negation, so with
	# the list missing `not is_array(data.data.jurisdictions[name])` does not
	# hold.
	not type_name(object.get(data.data.jurisdictions, name, null)) in {"array", "object"}
}
