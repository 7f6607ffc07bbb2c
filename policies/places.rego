package lexgate

# Where a party is: its site, the jurisdiction whose law governs it, the
# certifications it holds, and the lists of jurisdictions (EU/EEA members,
# adequacy decisions, embargoes) in data/jurisdictions.json.

# site is the site of a party's organisation whose longest path prefix
# matches the party's SPIFFE path; undefined when no site matches. The
# gateway has already found it when it filled in the party (see enriched);
# otherwise it is looked up in data.data.
site(p) := s if {
	enriched(p)
	s := p.site
} else := s if {
	not enriched(p)
	s := site_in_data(p)
}

# site_in_data finds a party's site in data.data.organisations.
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

# enriched holds for a party the gateway filled in from this policy set's
# data (organisation, site, jurisdiction, certifications: README.md, Input).
# Its facts are then read from the party instead of being worked out again
# in every decision; they are the same either way.
enriched(p) if is_object(p.organisation)

# site_name names a party's site in messages ("" without one).
site_name(p) := site(p).name if {
	site(p)
} else := ""

# jurisdiction is the ISO 3166-1 alpha-2 code governing a party: its
# site's when the site sets one, else its organisation's.
jurisdiction(p) := j if {
	enriched(p)
	j := p.jurisdiction
} else := j if {
	not enriched(p)
	j := site(p).jurisdiction
} else := org(p).jurisdiction

# certifications a party holds: its organisation's and its site's.
certifications(p) := {c | some c in object.get(p, "certifications", [])} if {
	enriched(p)
} else := {c | some c in object.get(org(p), "certifications", [])} | {c |
	s := site(p)
	some c in object.get(s, "certifications", [])
}

# eea holds when the jurisdiction (or "EU"/"EEA") is in the EU/EEA.
eea(j) if j in eu_eea

eea(j) if j in {"EU", "EEA"}

# adequate holds when the adequacy list (a map of jurisdiction to the date
# its decision took effect) covers j at input.time.
adequate(list, j) if date(list[j]) <= now

# embargoed holds when j is under embargo at input.time.
embargoed(j) if date(data.data.jurisdictions.embargoed[j]) <= now

# flows are the movements of a bundle an action makes, as [from, to]
# parties: a send moves it from the source to each recipient; a receive
# moves it from its sender (the counterparty) to the source.
flows contains [source, p] if {
	action == "send"
	some p in counterparties
}

flows contains [p, source] if {
	action == "receive"
	some p in counterparties
}

# bundle is the bundle of the request ({} when absent).
bundle := object.get(input, "bundle", {})

# subject_regions are where the data subjects of the bundle live.
subject_regions := {r | some r in object.get(bundle, "data_subject_regions", [])}

# personal_labels mark a bundle holding personal data.
personal_labels := {"personal-data", "special-category", "health"}

# personal holds when the bundle holds personal data.
personal if {
	some l in object.get(bundle, "labels", [])
	l in personal_labels
}

# has_any_in_force holds when a and b have an agreement of one of kinds in force.
has_any_in_force(a, b, kinds) if {
	some kind in kinds
	kind in in_force_kinds(a, b)
}

# export_needs_mechanism holds when personal data of subjects in regions
# moves from a party to a party outside home (a set of jurisdictions), to a
# jurisdiction that the adequacy list does not cover, without an agreement
# of kinds in force between their organisations.
export_needs_mechanism(from, to, home, list, kinds) if {
	personal
	known(from)
	known(to)
	j := jurisdiction(to)
	not j in home
	not adequate(list, j)
	not has_any_in_force(from.trust_domain, to.trust_domain, kinds)
}
