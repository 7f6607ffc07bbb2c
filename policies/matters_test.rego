# Tests of the matter registry: classification from records, the closed
# label vocabulary, permitted recipients and the client's consent.
package lexgate_test

# Matters of these tests, beside the fixture world's (fixtures_test.rego).
# law.test (DE) owns them.
mt_matters := object.union(matters, {
	# Personal data of German subjects; Manila (lpo.test, PH) permitted
	# with the client's consent until the end of 2026, which also covers
	# France and the US.
	"M-PD": {
		"client": "Acme AG", "owner": "law.test",
		"categories": ["personal-data"],
		"data_subject_jurisdictions": ["DE"],
		"client_consents": [{"reference": "ACME-7", "given": "2025-01-01", "expires": "2026-12-31", "organisations": ["lpo.test"], "countries": ["FR", "US"]}],
		"permitted_recipients": {"organisations": ["lpo.test"], "identities": ["spiffe://care.test/team/"]},
		"retention_days": 20, "max_downloads": 2,
	},
	# Personal data with no data-subject jurisdiction on record.
	"M-NOWHERE": {
		"client": "Nowhere Ltd", "owner": "law.test", "categories": ["personal-data"],
		"permitted_recipients": {"organisations": ["lpo.test"]},
		"client_consents": [{"reference": "NW-1", "given": "2025-01-01", "countries": ["PH"]}],
	},
	# No consent at all.
	"M-NOCONSENT": {
		"client": "Quiet GmbH", "owner": "law.test",
		"permitted_recipients": {"organisations": ["lpo.test", "fr.test"]},
	},
	# Consent covering the Philippines by country, and India until 2026-03-31.
	"M-COUNTRY": {
		"client": "Country SA", "owner": "law.test",
		"client_consents": [
			{"reference": "CS-PH", "given": "2025-01-01", "countries": ["PH"]},
			{"reference": "CS-IN", "given": "2025-01-01", "expires": "2026-03-31", "countries": ["IN"]},
			{"reference": "CS-US", "given": "2026-09-01", "countries": ["US"]},
		],
		"permitted_recipients": {"organisations": ["lpo.test", "new.test", "care.test", "jp.test"]},
	},
	# A health matter: a sender can never remove its category.
	"M-HEALTH": {
		"client": "Clinic", "owner": "law.test", "categories": ["health"],
		"data_subject_jurisdictions": ["US"],
		"client_consents": [{"reference": "CL-1", "given": "2025-01-01", "organisations": ["lpo.test", "care.test"]}],
		"permitted_recipients": {"organisations": ["lpo.test", "care.test"]},
	},
	# Short retention in seconds (tests and demonstrations).
	"M-SECONDS": object.union(anyone(["US"]), {"retention_seconds": 90}),
})

# mdecide decides x in the fixture world with the matters of these tests.
mdecide(x) := decide_with(x, mt_matters)

# msend is a send from law.test on matter m.
msend(m, to, labels, regions, t) := breq("send", party("law.test"), [party(d) | some d in to], {"matter": m, "labels": labels, "data_subject_regions": regions}, t)

test_matter_missing_refused if {
	d := mdecide(breq("send", party("law.test"), [party("lpo.test")], {"labels": []}, t0))
	codes(d) == {"matter.missing"}
	d2 := mdecide(breq("send", party("law.test"), [party("lpo.test")], {"matter": "", "labels": []}, t0))
	codes(d2) == {"matter.missing"}
}

test_matter_unknown_refused_with_its_number if {
	d := mdecide(msend("M-999", ["lpo.test"], [], [], t0))
	d.reasons == [{
		"code": "matter.unknown",
		"message": "matter \"M-999\" is not in the firm's matter registry: check the matter number, or ask records to register it (policies/data/matters.json)",
	}]
}

test_matter_unknown_refused_on_receive if {
	codes(mdecide(breq("receive", party("lpo.test"), [party("law.test")], {"matter": "M-999", "labels": []}, t0))) == {"matter.unknown"}
}

test_matter_known_allowed if {
	mdecide(msend("M-PD", ["lpo.test"], [], [], t0)).allow == true
}

test_label_unknown_suggests_nearest if {
	d := mdecide(msend("M-1", ["lpo.test"], ["helth"], [], t0))
	d.reasons == [{"code": "label.unknown", "message": "the label \"helth\" is not in the firm's vocabulary: did you mean `health`?"}]
}

test_label_unknown_suggestions_all if {
	every pair in [
		["Privileged", "privileged"],
		["priviledged", "privileged"],
		["personal_data", "personal-data"],
		["exportcontrolled", "export-controlled"],
		["healths", "health"],
		["hea", "health"],
	] {
		msg := sprintf("the label %q is not in the firm's vocabulary: did you mean `%s`?", pair)
		msg in messages(mdecide(msend("M-1", ["lpo.test"], [pair[0]], [], t0)))
	}
}

test_label_unknown_without_suggestion_lists_vocabulary if {
	d := mdecide(msend("M-1", ["lpo.test"], ["zzzzzzzzzz"], [], t0))
	d.reasons == [{"code": "label.unknown", "message": "the label \"zzzzzzzzzz\" is not in the firm's vocabulary (client-confidential, export-controlled, financial, health, personal-data, phi, privileged, special-category)"}]
}

test_label_unknown_not_checked_on_ack if {
	mdecide(breq("ack", party("lpo.test"), [party("law.test")], {"matter": "M-1", "labels": ["helth"]}, t0)).allow == true
}

test_classification_from_matter_categories if {
	# M-HEALTH holds health data: a sender who leaves the label out is
	# still checked for a BAA (lpo.test has none with law.test).
	codes(mdecide(msend("M-HEALTH", ["lpo.test"], [], [], t0))) == {"hipaa.no_baa"}
	mdecide(msend("M-HEALTH", ["care.test"], [], [], t0)).allow == true
}

test_classification_from_matter_jurisdictions if {
	# M-PD's subjects are German: GDPR applies although the sender gave no
	# region; lpo.test's SCC lapsed at the end of 2026.
	mdecide(msend("M-PD", ["lpo.test"], [], [], "2026-12-31T12:00:00Z")).allow == true
	"gdpr.no_transfer_mechanism" in codes(mdecide(msend("M-PD", ["lpo.test"], [], [], "2027-01-01T00:00:00Z")))
}

test_sender_label_adds_a_restriction if {
	mdecide(msend("M-1", ["lpo.test"], [], [], t0)).allow == true
	codes(mdecide(msend("M-1", ["lpo.test"], ["health"], [], t0))) == {"hipaa.no_baa"}
}

test_sender_region_adds_a_restriction if {
	# M-1's subjects are in the US; adding Swiss subjects brings the FADP in.
	mdecide(msend("M-1", ["jp.test"], ["personal-data"], [], t0)).allow == true
	codes(mdecide(msend("M-1", ["jp.test"], ["personal-data"], ["CH"], t0))) == {"fadp.no_transfer_mechanism"}
}

test_classification_no_jurisdiction_refused if {
	d := mdecide(msend("M-NOWHERE", ["lpo.test"], [], [], t0))
	d.reasons == [{
		"code": "classification.no_jurisdiction",
		"message": "matter M-NOWHERE holds personal data (personal-data) but no data-subject jurisdiction is known: ask records to add the data subjects' countries to the matter, or add them with --region",
	}]
	mdecide(msend("M-NOWHERE", ["lpo.test"], [], ["US"], t0)).allow == true
}

test_classification_no_jurisdiction_from_sender_label if {
	codes(mdecide(msend("M-2", ["lpo.test"], ["special-category"], [], t0))) == {"classification.no_jurisdiction"}
}

test_recipient_not_permitted if {
	d := mdecide(msend("M-PD", ["fr.test"], [], [], t0))
	d.reasons == [{
		"code": "matter.recipient_not_permitted",
		"message": "spiffe://fr.test/user is not a permitted recipient of matter M-PD (client Acme AG): ask for it to be added with lex matter request-recipient; another approver must confirm",
	}]
}

test_recipient_owner_always_permitted if {
	mdecide(msend("M-PD", [], [], [], t0)).reasons == [{"code": "send.no_recipients", "message": "a transfer needs at least one recipient"}]
	mdecide(breq("send", party("law.test"), [at("law.test", "/other")], {"matter": "M-PD", "labels": []}, t0)).allow == true
}

test_recipient_permitted_by_identity_prefix if {
	x := breq("send", party("law.test"), [at("care.test", "/team/joe")], {"matter": "M-PD", "labels": []}, t0)
	not "matter.recipient_not_permitted" in codes(mdecide(x))
	y := breq("send", party("law.test"), [at("care.test", "/other/joe")], {"matter": "M-PD", "labels": []}, t0)
	"matter.recipient_not_permitted" in codes(mdecide(y))
}

test_recipient_granted_at_run_time if {
	x := msend("M-PD", ["fr.test"], [], [], t0)
	granted := object.union(x, {"matter_grants": [{
		"recipient": "fr.test", "requested_by": "spiffe://law.test/user",
		"approved_by": "spiffe://law.test/partner/pat", "approved_at": "2026-05-30T10:00:00Z",
	}]})
	mdecide(granted).allow == true
	by_id := object.union(x, {"matter_grants": [{"recipient": "spiffe://fr.test/user", "requested_by": "a", "approved_by": "b", "approved_at": "2026-05-30T10:00:00Z"}]})
	mdecide(by_id).allow == true
	other := object.union(x, {"matter_grants": [{"recipient": "spiffe://fr.test/someone-else", "requested_by": "a", "approved_by": "b", "approved_at": "2026-05-30T10:00:00Z"}]})
	codes(mdecide(other)) == {"matter.recipient_not_permitted"}
}

test_recipient_checked_on_receive if {
	codes(mdecide(breq("receive", party("fr.test"), [party("law.test")], {"matter": "M-PD", "labels": []}, t0))) == {"matter.recipient_not_permitted"}
}

test_sender_not_on_matter_refused if {
	d := mdecide(breq("send", party("uk.test"), [party("law.test")], {"matter": "M-PD", "labels": []}, t0))
	codes(d) == {"matter.sender_not_permitted"}

	# A permitted recipient sends its work back to the firm.
	mdecide(breq("send", party("lpo.test"), [party("law.test")], {"matter": "M-PD", "labels": []}, t0)).allow == true
}

test_consent_missing if {
	d := mdecide(msend("M-NOCONSENT", ["lpo.test"], [], [], t0))
	d.reasons == [{
		"code": "consent.missing",
		"message": "spiffe://lpo.test/user is an outside provider in PH: the client of matter M-NOCONSENT (Quiet GmbH) has not consented to outsourced or offshore work (ABA Formal Opinion 08-451); record the client's informed consent on the matter first",
	}]
}

test_consent_not_needed_onshore if {
	# small.test is in DE, like the owner: onshore, so no consent is
	# needed (it is refused only as not permitted); fr.test in FR is offshore.
	mdecide(breq("send", party("law.test"), [party("small.test")], {"matter": "M-NOCONSENT", "labels": []}, t0)).reasons == [{
		"code": "matter.recipient_not_permitted",
		"message": "spiffe://small.test/user is not a permitted recipient of matter M-NOCONSENT (client Quiet GmbH): ask for it to be added with lex matter request-recipient; another approver must confirm",
	}]
	codes(mdecide(msend("M-NOCONSENT", ["fr.test"], [], [], t0))) == {"consent.missing"}
}

test_consent_by_country if {
	mdecide(msend("M-COUNTRY", ["lpo.test"], [], [], t0)).allow == true
}

test_consent_expired if {
	d := mdecide(msend("M-COUNTRY", ["new.test"], [], [], "2026-07-01T00:00:00Z"))
	d.reasons == [{
		"code": "consent.expired",
		"message": "spiffe://new.test/user may receive material of matter M-COUNTRY only with the client's consent in force: consent CS-IN expired on 2026-03-31 (ABA Formal Opinion 08-451); ask the client to renew it",
	}]
}

test_consent_in_force_through_its_last_day if {
	# new.test's DPA with law.test starts 2026-07-01; before that only the consent is tested.
	"consent.expired" in codes(mdecide(msend("M-COUNTRY", ["new.test"], [], [], "2026-04-01T00:00:00Z")))
	not "consent.expired" in codes(mdecide(msend("M-COUNTRY", ["new.test"], [], [], "2026-03-31T23:59:59Z")))
}

test_consent_not_yet_given if {
	d := mdecide(msend("M-COUNTRY", ["care.test"], [], [], t0))
	messages(d) == {"spiffe://care.test/user may receive material of matter M-COUNTRY only with the client's consent in force: consent CS-US only takes effect on 2026-09-01 (ABA Formal Opinion 08-451); ask the client to renew it"}
	mdecide(msend("M-COUNTRY", ["care.test"], [], [], "2026-09-01T00:00:00Z")).allow == true
}

test_consent_not_covering if {
	d := mdecide(msend("M-COUNTRY", ["jp.test"], [], [], t0))
	d.reasons == [{
		"code": "consent.not_covering",
		"message": "the client's consent on matter M-COUNTRY (CS-IN, CS-PH, CS-US) does not cover spiffe://jp.test/user (jp.test, in JP): ask the client to extend it to that organisation or country (ABA Formal Opinion 08-451)",
	}]
}

test_consent_rechecked_on_receive if {
	x := breq("receive", party("new.test"), [party("law.test")], {"matter": "M-COUNTRY", "labels": []}, "2026-07-01T00:00:00Z")
	codes(mdecide(x)) == {"consent.expired"}
}

test_obligations_from_matter if {
	d := mdecide(msend("M-PD", ["lpo.test"], [], [], t0))
	d.obligations == {"retention_days": 20, "max_downloads": 2, "expires_at": "2026-06-21T10:00:00Z"}
}

test_obligations_retention_seconds_win if {
	d := mdecide(msend("M-SECONDS", ["lpo.test"], [], [], t0))
	d.obligations == {"retention_days": 1, "max_downloads": 3, "expires_at": "2026-06-01T10:01:30Z"}
}

test_obligations_present_on_every_allowed_send if {
	every m in ["M-1", "M-PD", "M-COUNTRY", "M-SECONDS"] {
		d := mdecide(msend(m, ["lpo.test"], [], [], t0))
		d.allow == true
		d.obligations.retention_days > 0
		d.obligations.max_downloads > 0
		d.obligations.expires_at != ""
	}
}

test_matter_missing_data_refuses_every_send if {
	d := decide_with(msend("M-1", ["lpo.test"], [], [], t0), {})
	codes(d) == {"matter.unknown"}
}
