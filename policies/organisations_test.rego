package lexgate_test

import data.lexgate

in_force_at(ag, t) if {
	lexgate.in_force(ag) with input as {"time": t}
}

nda := {"parties": ["a.test", "b.test"], "kind": "NDA", "signed": "2025-01-15", "expires": "2026-03-31"}

test_in_force_from_signing_day if {
	in_force_at(nda, "2025-01-15T00:00:00Z")
	not in_force_at(nda, "2025-01-14T23:59:59Z")
}

test_in_force_through_expiry_day if {
	in_force_at(nda, "2026-03-31T23:59:59.999Z")
	not in_force_at(nda, "2026-04-01T00:00:00Z")
}

test_expiry_is_utc if {
	# 2026-04-01T01:30 in Berlin is still 2026-03-31 in UTC.
	in_force_at(nda, "2026-04-01T01:30:00+02:00")
	not in_force_at(nda, "2026-03-31T20:00:00-05:00")
}

test_no_expiry_never_expires if {
	in_force_at(object.remove(nda, {"expires"}), "2099-01-01T00:00:00Z")
}

test_agreements_in_data_is_symmetric if {
	ab := lexgate.agreements_in_data("a.test", "b.test") with data.data.agreements as [nda]
	ba := lexgate.agreements_in_data("b.test", "a.test") with data.data.agreements as [nda]
	ab == [nda]
	ba == [nda]
}

# The gateway sends each counterparty with its agreements with the source:
# agreements_between reads them there, in either order, not data.data.
test_agreements_between_reads_the_counterparty if {
	x := {
		"source": {"trust_domain": "a.test", "organisation": {}},
		"destinations": [{"trust_domain": "b.test", "organisation": {"agreements": [nda]}}, {"trust_domain": "c.test", "organisation": {}}],
	}
	lexgate.agreements_between("a.test", "b.test") == [nda] with input as x with data.data.agreements as []
	lexgate.agreements_between("b.test", "a.test") == [nda] with input as x with data.data.agreements as []
	lexgate.agreements_between("a.test", "c.test") == [] with input as x with data.data.agreements as [nda]
	lexgate.agreements_between("a.test", "d.test") == [] with input as x
}

# Without the gateway's enrichment, a counterparty's agreements with the
# source come from data.data.
test_counterparty_agreements_from_data if {
	x := req("send", "law.test", ["lpo.test", "law.test"], [], t0)
	ags := lexgate.agreements_between("law.test", "lpo.test") with input as x with data.data.organisations as orgs with data.data.agreements as agreements
	{ag.kind | some ag in ags} == {"NDA", "SCC"}
	lexgate.agreements_between("law.test", "law.test") == [] with input as x with data.data.organisations as orgs with data.data.agreements as agreements
}

test_lapse_messages if {
	lexgate.lapse(nda) == "the NDA expired on 2026-03-31" with input as {"time": "2026-04-01T00:00:00Z"}
	lexgate.lapse(nda) == "the NDA only takes effect on 2025-01-15" with input as {"time": "2025-01-01T00:00:00Z"}
}

test_unknown_source_named if {
	d := decide(req("send", "evil.test", ["law.test"], [], t0))
	d.allow == false
	messages(d) == {"spiffe://evil.test/user belongs to evil.test, which is not a known organisation: ask your security team to add it to policies/data"}
}

test_unknown_destination_denied if {
	d := decide(req("send", "law.test", ["evil.test"], [], t0))
	d.allow == false
	codes(d) == {"org.unknown"}
}

test_source_without_trust_domain_denied if {
	x := {"version": 1, "action": "list_inbox", "time": t0, "source": {"id": "spiffe://law.test/x"}}
	codes(decide(x)) == {"org.unknown"}
}
