package lexgate

# Transfer instruments: which agreement makes a given transfer lawful. An
# agreement counts for a transfer from `from` to `to` when it is of a kind
# the regime accepts, in force, of a current version (SCCs: Commission
# Implementing Decision (EU) 2021/914 only: the clauses of Decisions
# 2001/497/EC, 2004/915/EC and 2010/87/EU may no longer be relied on since
# 27 December 2022, Art. 4 of 2021/914), covers the destination (its
# `covers` countries or sites; without `covers`, the importing
# organisation's own country only), and rests on a transfer impact
# assessment no older than settings.tia_max_age_days (EDPB
# Recommendations 01/2020; for the IDTA, the ICO's transfer risk
# assessment). Shared by gdpr.rego, uk_gdpr.rego and swiss_fadp.rego.

# tia_kinds are the instruments that need a transfer impact assessment.
tia_kinds := {"SCC", "BCR", "IDTA"}

# tia_max_age_days is how old a TIA may be (data/settings.json; a year
# when the firm sets none).
tia_max_age_days := d if {
	d := data.data.settings.tia_max_age_days
} else := 365

# tia_cutoff is the oldest day a TIA may carry today.
tia_cutoff := time.format([time.add_date(now, 0, 0, 0 - tia_max_age_days), "UTC", "2006-01-02"])

# current_version holds for an agreement whose kind has no versions we
# track, or an SCC of Decision 2021/914.
current_version(ag) if ag.kind != "SCC"

else if ag.version == "2021/914"

# covers_destination holds when the agreement covers to: its country or
# site is listed in `covers`; without `covers`, to is in the importing
# organisation's own country.
covers_destination(ag, to) if {
	not ag.covers
	to.jurisdiction == to.organisation.jurisdiction
} else if {
	to.jurisdiction in object.get(ag.covers, "countries", [])
} else if {
	site_name(to) in object.get(ag.covers, "sites", [])
}

# tia_current holds when the agreement needs no TIA or has one done on or
# after tia_cutoff.
tia_current(ag) if not ag.kind in tia_kinds

else if {
	ag.tia.date >= tia_cutoff
	ag.tia.date <= today
}

# instrument_ok holds when agreement ag makes a transfer to `to` lawful
# under a regime accepting kinds.
instrument_ok(ag, to, kinds) if {
	ag.kind in kinds
	in_force(ag)
	current_version(ag)
	covers_destination(ag, to)
	tia_current(ag)
}

# has_instrument holds when some agreement between from and to makes the
# transfer lawful under a regime accepting kinds.
# (false rather than undefined when it does not hold: OPA keeps a
# function's value for the rest of the decision, but works an undefined
# one out again at every call, and a refusal asks it again for its note
# (gdpr.rego) and the UK rules for each instrument (uk_gdpr.rego).)
default has_instrument(_, _, _) := false

has_instrument(from, to, kinds) if {
	some ag in agreements_between(from.trust_domain, to.trust_domain)
	instrument_ok(ag, to, kinds)
}

# instrument_problem says why no agreement between from and to makes the
# transfer lawful: [code suffix, explanation]. The suffix is one of
# no_transfer_mechanism (none of kinds on file, or none in force),
# scc_outdated, destination_not_covered, tia_missing, tia_stale.
instrument_problem(from, to, kinds) := ["no_transfer_mechanism", why_not(from.trust_domain, to.trust_domain, kinds)] if {
	count([ag | some ag in candidates(from, to, kinds); in_force(ag)]) == 0
} else := ["scc_outdated", sprintf("the SCCs between %s and %s are of version %s: only the clauses of Decision (EU) 2021/914 may be relied on since 27 December 2022 (its Art. 4); sign the 2021/914 clauses (the right module)", [
	from.trust_domain, to.trust_domain, concat(", ", sort({object.get(ag, "version", "unknown") | some ag in candidates(from, to, kinds); in_force(ag)})),
])] if {
	count([ag | some ag in candidates(from, to, kinds); in_force(ag); current_version(ag)]) == 0
} else := ["destination_not_covered", sprintf("the %s between %s and %s does not cover %s (%s%s): extend its destinations (covers) to that country or site", [
	concat(" and ", sort({ag.kind | some ag in candidates(from, to, kinds); in_force(ag); current_version(ag)})),
	from.trust_domain, to.trust_domain, who(to), to.jurisdiction, site_label(to),
])] if {
	count([ag | some ag in candidates(from, to, kinds); in_force(ag); current_version(ag); covers_destination(ag, to)]) == 0
} else := ["tia_missing", sprintf("the %s between %s and %s has no transfer impact assessment on file (EDPB Recommendations 01/2020): record it (tia: reference, date)", [
	concat(" and ", sort({ag.kind | some ag in candidates(from, to, kinds)})), from.trust_domain, to.trust_domain,
])] if {
	count([ag | some ag in candidates(from, to, kinds); ag.tia != false]) == 0
} else := ["tia_stale", sprintf("the transfer impact assessment for the %s between %s and %s dates from %s, older than %d days (settings.tia_max_age_days): review it", [
	concat(" and ", sort({ag.kind | some ag in candidates(from, to, kinds)})), from.trust_domain, to.trust_domain,
	max({ag.tia.date | some ag in candidates(from, to, kinds); ag.tia != false}), tia_max_age_days,
])]

# candidates are the agreements of kinds between from and to.
candidates(from, to, kinds) := [ag |
	some ag in agreements_between(from.trust_domain, to.trust_domain)
	ag.kind in kinds
]

# --- Processors: GDPR / UK GDPR Art. 28 -----------------------------------

# processor_roles are the roles that need a processor contract.
processor_roles := {"processor", "sub-processor"}

# processor holds when party to acts as a processor for from's
# organisation: its role under an agreement between them, or, when no
# agreement records roles, an outsourcing provider ("lpo" organisation).
processor(from, to) if {
	some ag in agreements_between(from.trust_domain, to.trust_domain)
	ag.roles[to.trust_domain] in processor_roles
} else if {
	to.organisation.kind == "lpo" # first: it settles most recipients at once
	count([ag | some ag in agreements_between(from.trust_domain, to.trust_domain); ag.roles != false]) == 0
}

# processor_contract holds when a contract meeting Art. 28(3) is in force
# between from and to: a DPA, or SCCs of 2021/914 module 2 or 3 (whose
# clauses include the Art. 28(3) terms, Decision 2021/914 recital 9).
processor_contract(from, to) if "DPA" in in_force_kinds(from.trust_domain, to.trust_domain)

else if {
	some ag in agreements_between(from.trust_domain, to.trust_domain)
	ag.kind == "SCC"
	ag.version == "2021/914"
	ag.module in {2, 3}
	in_force(ag)
}

# under_gdpr_or_uk holds when a flow's personal data is under the GDPR or
# the UK GDPR: the exporter is established there or the data subjects are.
under_gdpr_or_uk(from) if gdpr_exporter(from)

else if eea_subjects

else if uk_exporter(from)

else if uk_subjects

personal_denies contains {
	"code": "gdpr.no_processor_contract",
	"message": sprintf("%s processes personal data for %s, which requires a contract under GDPR/UK GDPR Art. 28(3): %s; sign a DPA (or the 2021/914 SCCs, module 2 or 3)", [
		to.trust_domain, from.trust_domain, why_not(from.trust_domain, to.trust_domain, {"DPA", "SCC"}),
	]),
} if {
	personal == true
	some [from, to] in cross_flows # places.rego: two known organisations
	under_gdpr_or_uk(from)
	processor(from, to)
	not processor_contract(from, to)
}
