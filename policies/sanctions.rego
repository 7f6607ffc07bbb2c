package lexgate

# Sanctions. Two sources of data:
#
# 1. data.data.jurisdictions.embargoed (a country → the day it took effect):
#    a comprehensive embargo whatever the firm's nexus; nothing moves to or
#    from such a jurisdiction, whatever the action.
#
# 2. data.data.jurisdictions.sanctions: per regime ("EU", "US", "UK") a map
#    of ISO 3166-1 countries or ISO 3166-2 regions (such as UA-43, Crimea)
#    to dated entries {tier, from, until, source}. A regime applies when the
#    firm has a nexus to it: the source's organisation and the matter's
#    owner, by their jurisdiction (EU/EEA → EU, GB → UK, US → US) or their
#    `sanctions_nexus` list. Tier "embargo" refuses every action to or from
#    the place; tier "restricted" (sectoral regimes such as the EU's and
#    UK's on Russia and Belarus) refuses a transfer unless the matter
#    records a compliance sign-off covering the country (sanctions_signoff:
#    reference, by, date, countries).
#
# 3. Screening: when the firm sets settings.screening_max_age_days, every
#    organisation other than the matter's owner that a transfer goes to or
#    is received by needs a screening
#    record (organisation `screening`: lists, date, result) no older than
#    that, with result "clear". The policy does not screen names itself.

deny contains {
	"code": "sanctions.embargoed",
	"message": sprintf("%s is in %s, which is under embargo: lexgate refuses every action to or from it", [who(p), p.jurisdiction]),
} if {
	some p in parties
	since := data.data.jurisdictions.embargoed[p.jurisdiction] # embargoed(p.jurisdiction), places.rego; first: it rules out most parties at once
	p.organisation != false
	since <= today
}

# regime_of maps a jurisdiction to the sanctions regime it has a nexus to.
regime_of(j) := "EU" if {
	j in data.data.jurisdictions.eu_eea
} else := "UK" if {
	j == "GB"
} else := "US" if {
	j == "US"
}

# nexus_of are the regimes organisation td has a nexus to.
nexus_of(td) := {r | some r in data.data.organisations[td].sanctions_nexus} | {r | r := regime_of(data.data.organisations[td].jurisdiction)}

# nexus_of_party are the regimes party p's organisation has a nexus to
# (empty for an unknown organisation).
nexus_of_party(p) := nexus_of(p.trust_domain) if {
	p.organisation != false
} else := set()

# sanction_regimes are the regimes the firm must observe for the request.
sanction_regimes := nexus_of(matter_owner) if {
	source.organisation != false
	source.trust_domain == matter_owner # the usual case: the owner's own people send
} else := nexus_of_party(source) | {r | some r in nexus_of(matter_owner)}

# sanction_hits are the [party, regime, place, entry] of the parties whose
# country or site region (ISO 3166-2) is under a sanctions regime the firm
# observes, in force today: each place looked up under each such regime.
sanction_hits := [[p, regime, place, e] |
	some regime in sanction_regimes
	entries := data.data.jurisdictions.sanctions[regime]
	some p in parties
	p.organisation != false
	some place in [p.jurisdiction, object.get(p, ["site", "region"], "")]
	e := entries[place]
	entry_in_force(e)
]

deny contains {
	"code": "sanctions.embargoed",
	"message": sprintf("%s is in %s, under the %s embargo (%s): lexgate refuses every action to or from it", [who(p), place, regime, object.get(e, "source", "sanctions data")]),
} if {
	some [p, regime, place, e] in sanction_hits
	e.tier == "embargo"
}

deny contains {
	"code": "sanctions.restricted_no_signoff",
	"message": sprintf("%s is in %s, under %s restrictive measures (%s): a transfer needs the compliance team's sign-off for that country recorded on matter %s (sanctions_signoff)", [who(p), place, regime, object.get(e, "source", "sanctions data"), matter_id]),
} if {
	action in matter_actions
	some [p, regime, place, e] in sanction_hits
	e.tier == "restricted"
	not signed_off(place)
}

# signed_off holds when the matter records a compliance sign-off covering
# place (a country or region, or the country of a region).
signed_off(place) if {
	some s in object.get(matter_record, "sanctions_signoff", [])
	s.reference != false
	some c in s.countries
	c in {place, substring(place, 0, 2)}
}

# screening_max_age is the firm's maximum age of a screening record, in
# days; undefined when the firm does not require screening.
screening_max_age := data.data.settings.screening_max_age_days

# screening_cutoff is the oldest day a screening may carry today.
screening_cutoff := time.format([time.add_date(now, 0, 0, 0 - screening_max_age), "UTC", "2006-01-02"])

# screening_clear holds for a screening record s that refuses nothing: a
# date no older than screening_cutoff and the result "clear" (the
# records of most organisations). screening_reason is not looked at then.
screening_clear(s) if {
	s.result == "clear"
	s.date >= screening_cutoff
}

# screening_reason is the reason a screening record s of party p refuses
# the transfer, if any.
screening_reason(p, s) := {
	"code": "sanctions.screening_missing",
	"message": sprintf("%s has no sanctions screening on file (EU, OFAC SDN and UK consolidated lists): screen it and record the result (organisation screening: lists, date, result)", [p.trust_domain]),
} if {
	not s.date
} else := {
	"code": "sanctions.screening_stale",
	"message": sprintf("the sanctions screening of %s dates from %s, older than %d days (settings.screening_max_age_days): screen it again", [p.trust_domain, s.date, screening_max_age]),
} if {
	s.date < screening_cutoff
} else := {
	"code": "sanctions.screening_hit",
	"message": sprintf("the sanctions screening of %s on %s found %q: the compliance team must clear it first", [p.trust_domain, s.date, s.result]),
} if {
	s.result != "clear"
}

# The organisations of a transfer other than the matter's owner (the
# sender's recipients, or the receiver) need a screening record.
deny contains r if {
	screening_max_age != false
	action in matter_actions
	matter != false
	some p in parties
	p.organisation != false
	p.trust_domain != matter_owner
	s := object.get(data.data.organisations[p.trust_domain], "screening", {})
	not screening_clear(s)
	r := screening_reason(p, s)
}
