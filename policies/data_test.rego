# Tests of the shipped contracts in policies/data: the demo scenario.
# When the security team changes a contract, these say what changed.
package lexgate_test

harbor := {"id": "spiffe://harbor-law.example/paralegal/alice", "trust_domain": "harbor-law.example", "path": "/paralegal/alice"}

manila := {"id": "spiffe://manila-lpo.example/site/review-team", "trust_domain": "manila-lpo.example", "path": "/site/review-team"}

bogota := {"id": "spiffe://bogota-lpo.example/site/review-team", "trust_domain": "bogota-lpo.example", "path": "/site/review-team"}

send_to(dests, labels, t) := send_on("HL-2026-0042", dests, labels, t)

# send_on is a send from Alice on a matter of the shipped registry.
send_on(matter, dests, labels, t) := d if {
	d := data.lexgate.decision with input as {
		"version": 1, "action": "send", "time": t,
		"source": harbor, "destinations": dests, "bundle": {"matter": matter, "labels": labels},
	}
}

test_shipped_harbor_to_manila_allowed if {
	d := send_to([manila], ["privileged"], t0)
	d.allow == true
	d.obligations.retention_days == 60
}

test_shipped_manila_agreements_last_through_2027 if {
	# (Manila's yearly sanctions screening, dated 2026-12-01, is set aside
	# here: test_shipped_screening_lapses_after_a_year.)
	send_to([manila], [], "2027-12-31T23:00:00Z").allow == true with data.data.settings as {}
	send_to([manila], [], "2028-01-01T00:00:00Z").allow == false with data.data.settings as {}
}

test_shipped_screening_lapses_after_a_year if {
	send_to([manila], [], "2027-12-01T12:00:00Z").allow == true
	{r.code | some r in send_to([manila], [], "2027-12-02T00:00:00Z").reasons} == {"sanctions.screening_stale"}
}

test_shipped_health_to_manila_refused_no_baa if {
	d := send_to([manila], ["health"], t0)
	d.allow == false
	{r.code | some r in d.reasons} == {"hipaa.no_baa"}
}

test_shipped_bogota_nda_expired if {
	d := send_on("HL-2026-0050", [bogota], [], t0)
	d.reasons == [{
		"code": "agreement.not_in_force",
		"message": "bogota-lpo.example has no agreement in force with harbor-law.example: the NDA expired on 2026-03-31",
	}]
	send_on("HL-2026-0050", [bogota], [], "2026-03-31T12:00:00Z").allow == true
}

test_shipped_organisations_have_iso_jurisdictions if {
	every td, o in data.data.organisations {
		regex.match(`^[A-Z]{2}$`, o.jurisdiction)
		o.name != ""
		td != ""
	}
}

test_shipped_agreements_are_well_formed if {
	every ag in data.data.agreements {
		count(ag.parties) == 2
		every td in ag.parties {
			data.data.organisations[td]
		}
		regex.match(`^\d{4}-\d{2}-\d{2}$`, ag.signed)
		regex.match(`^\d{4}-\d{2}-\d{2}$`, object.get(ag, "expires", "9999-12-31"))
	}
}

test_shipped_eu_personal_data_to_manila_under_scc if {
	b := {"matter": "HL-2026-0050", "labels": ["personal-data"], "data_subject_regions": ["DE"]}
	d := data.lexgate.decision with input as {"version": 1, "action": "send", "time": t0, "source": harbor, "destinations": [manila], "bundle": b}
	d.allow == true
	d2 := data.lexgate.decision with input as {"version": 1, "action": "send", "time": "2026-03-01T00:00:00Z", "source": harbor, "destinations": [bogota], "bundle": b}

	# Bogotá is an LPO (a processor) with an NDA only: no Art. 28 contract either.
	{r.code | some r in d2.reasons} == {"gdpr.no_transfer_mechanism", "gdpr.no_processor_contract"}
}

test_shipped_jurisdiction_lists_are_iso_codes if {
	every j in data.data.jurisdictions.eu_eea {
		regex.match(`^[A-Z]{2}$`, j)
	}
	every list in ["gdpr_adequacy", "uk_adequacy", "ch_adequacy"] {
		every j, e in data.data.jurisdictions[list] {
			regex.match(`^[A-Z]{2}$`, j)
			regex.match(`^\d{4}-\d{2}-\d{2}$`, e.from)
			e.scope in {"full", "partial", "certified"}
			e.source != ""
		}
	}
	every regime, entries in data.data.jurisdictions.sanctions {
		regime in {"EU", "US", "UK"}
		every place, e in entries {
			regex.match(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`, place)
			e.tier in {"embargo", "restricted"}
			e.source != ""
		}
	}
	data.data.jurisdictions.checked == "2026-12-07"
}
