package lexgate_test

test_gdpr_eu_subjects_to_ph_under_scc_allowed if {
	decide(breq("send", party("law.test"), [party("lpo.test")], pd(["DE"]), t0)).allow == true
}

test_gdpr_scc_expired_names_it if {
	d := decide(breq("send", party("law.test"), [party("lpo.test")], pd(["FR", "DE"]), "2027-01-01T00:00:00Z"))

	# lpo.test is law.test's processor: its Art. 28 contract was the SCC (module 2) too.
	d.reasons == [
		{
			"code": "gdpr.no_processor_contract",
			"message": "lpo.test processes personal data for law.test, which requires a contract under GDPR/UK GDPR Art. 28(3): the SCC expired on 2026-12-31; sign a DPA (or the 2021/914 SCCs, module 2 or 3)",
		},
		{
			"code": "gdpr.no_transfer_mechanism",
			"message": "GDPR Art. 44-46: personal data may go from law.test to lpo.test (PH) only under an adequacy decision, the 2021/914 SCCs or BCRs, or an Art. 49 derogation recorded on the matter, because law.test is established in the EEA (GDPR Art. 3(1)); PH has no EU adequacy decision for this recipient, and the SCC expired on 2026-12-31",
		},
	]
}

test_gdpr_scc_in_force_through_last_day if {
	decide(breq("send", party("law.test"), [party("lpo.test")], pd(["DE"]), "2026-12-31T23:59:59Z")).allow == true
}

test_gdpr_no_scc_on_file if {
	d := decide(breq("send", party("law.test"), [party("old.test")], pd(["EU"]), "2026-03-01T00:00:00Z"))
	messages(d) == {"GDPR Art. 44-46: personal data may go from law.test to old.test (CO) only under an adequacy decision, the 2021/914 SCCs or BCRs, or an Art. 49 derogation recorded on the matter, because law.test is established in the EEA (GDPR Art. 3(1)); CO has no EU adequacy decision for this recipient, and no BCR or SCC between them is on file"}
}

test_gdpr_adequate_country_needs_no_scc if {
	decide(breq("send", party("law.test"), [party("jp.test")], pd(["DE"]), t0)).allow == true
}

test_gdpr_adequacy_counts_from_its_date if {
	codes(decide(breq("send", party("law.test"), [party("kr.test")], pd(["DE"]), t0))) == {"gdpr.no_transfer_mechanism"}
	decide(breq("send", party("law.test"), [party("kr.test")], pd(["DE"]), "2026-07-01T00:00:00Z")).allow == true
}

test_gdpr_within_eea_allowed if {
	decide(breq("send", party("law.test"), [party("fr.test")], pd(["DE"]), t0)).allow == true
}

test_gdpr_only_for_personal_data if {
	no_pd := {"matter": "M-1", "labels": ["financial"], "data_subject_regions": ["DE"]}
	decide(breq("send", party("law.test"), [party("old.test")], no_pd, "2026-03-01T00:00:00Z")).allow == true
}

test_art3_1_exporter_in_eea_subjects_elsewhere_needs_mechanism if {
	# A German firm sends personal data of Brazilian subjects to Colombia:
	# Chapter V applies to the exporter, wherever its data subjects live.
	codes(decide(breq("send", party("law.test"), [party("old.test")], pd(["BR"]), "2026-03-01T00:00:00Z"))) == {"gdpr.no_transfer_mechanism"}
}

test_art3_2_subjects_in_eea_exporter_elsewhere_needs_mechanism if {
	# A Colombian firm sends personal data of German subjects onward to Brazil.
	x := breq("send", party("old.test"), [party("none.test")], pd(["DE"]), "2026-03-01T00:00:00Z")
	"gdpr.no_transfer_mechanism" in codes(decide(x))
}

test_art44_exporter_outside_eea_subjects_outside_eea_not_reached if {
	# A US firm's data of US subjects to Brazil: no GDPR.
	x := breq("send", party("care.test"), [party("none.test")], pd(["US"]), "2026-03-01T00:00:00Z")
	not "gdpr.no_transfer_mechanism" in codes(decide(x))
}

test_gdpr_intra_group_needs_bcr if {
	berlin := at("multi.test", "/paralegal/bob")
	ny := at("multi.test", "/ny/analyst")
	decide(breq("send", berlin, [ny], pd(["DE"]), t0)).allow == true
	codes(decide(breq("send", berlin, [ny], pd(["DE"]), "2026-07-01T00:00:00Z"))) == {"gdpr.no_transfer_mechanism"}
}

test_gdpr_rechecked_on_receive if {
	codes(decide(breq("receive", party("lpo.test"), [party("law.test")], pd(["DE"]), "2027-01-01T00:00:00Z"))) == {"gdpr.no_transfer_mechanism", "gdpr.no_processor_contract"}
}

test_personal_is_each_personal_label if {
	every l in data.lexgate.personal_labels {
		data.lexgate.personal with input as {"bundle": {"labels": ["financial", l]}}
	}
	not data.lexgate.personal with input as {"bundle": {"labels": ["financial", "privileged"]}}
	not data.lexgate.personal with input as {}
}

test_eea_subjects_by_member_state_or_bloc if {
	every r in ["DE", "EU", "EEA"] {
		data.lexgate.eea_subjects with input as {"bundle": {"data_subject_regions": ["US", r]}}
			with data.data.jurisdictions as jurisdictions
	}
	not data.lexgate.eea_subjects with input as {"bundle": {"data_subject_regions": ["US", "GB"]}}
		with data.data.jurisdictions as jurisdictions
}
