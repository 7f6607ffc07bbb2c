package lexgate

# Organisations and agreements come from policies/data (loaded at
# data.data.organisations and data.data.agreements), so a security team
# changes contracts without touching Rego.

# org is the organisation of a party, looked up by its SPIFFE trust domain.
org(party) := data.data.organisations[party.trust_domain]

# known holds when the party (source or a counterparty, with its facts)
# belongs to an organisation on file.
known(party) if party.organisation

# who names a party in messages: its SPIFFE ID.
who(party) := object.get(party, "id", "(unnamed party)")

# domain names a party's organisation in messages: its trust domain.
domain(party) := object.get(party, "trust_domain", "(no trust domain)")

deny contains {
	"code": "org.unknown",
	"message": sprintf("%s belongs to %s, which is not a known organisation: ask your security team to add it to policies/data", [who(source), domain(source)]),
} if {
	not source.organisation
}

deny contains {
	"code": "org.unknown",
	"message": sprintf("%s belongs to %s, which is not a known organisation: ask your security team to add it to policies/data", [who(p), domain(p)]),
} if {
	some p in unknown_counterparties
}

# unknown_counterparties are the counterparties of no known organisation.
unknown_counterparties := [p |
	some p in counterparties
	not p.organisation
]

# agreements_between lists the agreements on file between trust domains a
# and b: the source's and a counterparty's, in either order. They are the
# ones that counterparty carries in organisation.agreements: the gateway puts
# each pair's agreements in the input (README.md, Input), so a decision never
# reads the agreements in data.data; for a party that comes without its facts
# (opa test, opa eval), with_facts (places.rego) finds them there.
agreements_between(a, b) := pair_agreements[b] if {
	a == source.trust_domain
} else := pair_agreements[a] if {
	b == source.trust_domain
} else := []

# pair_agreements maps the trust domain of each known counterparty to the
# agreements between its organisation and the source's.
# (One object made once per decision: as a partial object rule, each lookup
# evaluated the rule again.)
pair_agreements := {p.trust_domain: object.get(p.organisation, "agreements", []) |
	some p in counterparties
	p.organisation != false
}

# agreements_in_data lists the agreements between trust domains a and b in
# data.data.agreements (in file order).
agreements_in_data(a, b) := [ag |
	some ag in data.data.agreements
	{ag.parties[0], ag.parties[1]} == {a, b}
]

# date parses a YYYY-MM-DD date of the data files (midnight UTC).
date(s) := time.parse_ns("2006-01-02", s)

# in_force holds when the agreement is signed and has not expired at input.time:
# it is in force from its signing day through the whole of its expiry day (UTC).
# An agreement without "expires" never expires. (Days compare as strings with
# today, places.rego: no date is parsed.)
in_force(ag) if {
	ag.signed <= today
	not lapsed(ag)
}

# lapsed holds when input.time is after the agreement's expiry day (UTC).
lapsed(ag) if ag.expires < today

# in_force_kinds are the kinds of the agreements between a and b in force at
# input.time. Every rule asks through it, so each pair's agreements are
# checked once per decision.
in_force_kinds(a, b) := {ag.kind |
	some ag in agreements_between(a, b)
	in_force(ag)
}

# covered holds when a and b may exchange documents: they are the same
# organisation or have at least one agreement in force.
covered(a, b) if a == b

covered(a, b) if count(in_force_kinds(a, b)) > 0

# has_in_force holds when a and b have an agreement of this kind in force.
has_in_force(a, b, kind) if kind in in_force_kinds(a, b)

# lapse says in plain words why an agreement is not in force.
lapse(ag) := sprintf("the %s expired on %s", [ag.kind, ag.expires]) if {
	lapsed(ag)
} else := sprintf("the %s only takes effect on %s", [ag.kind, ag.signed]) if {
	today < ag.signed
} else := sprintf("the %s is in force", [ag.kind])

# why_not explains why a and b have no agreement of one of these kinds in force.
why_not(a, b, kinds) := concat(" and ", sort(lapses)) if {
	lapses := [lapse(ag) | some ag in agreements_between(a, b); ag.kind in kinds]
	count(lapses) > 0
} else := sprintf("no %s between them is on file", [concat(" or ", sort(kinds))])

# agreement_kinds lists the kinds of agreement on file between a and b.
agreement_kinds(a, b) := {ag.kind | some ag in agreements_between(a, b)}
