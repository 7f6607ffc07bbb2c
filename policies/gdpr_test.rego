package lexgate_test

test_gdpr_eu_subjects_to_ph_under_scc_allowed if {
	decide(breq("send", party("law.test"), [party("lpo.test")], pd(["DE"]), t0)).allow == true
}

test_gdpr_scc_expired_names_it if {
	d := decide(breq("send", party("law.test"), [party("lpo.test")], pd(["FR", "DE"]), "2027-01-01T00:00:00Z"))
	d.reasons == [{
		"code": "gdpr.no_transfer_mechanism",
		"message": "Personal data of EU/EEA subjects may go to PH only under SCCs or BCRs (PH has no EU adequacy decision); between law.test and lpo.test the SCC expired on 2026-12-31",
	}]
}

test_gdpr_scc_in_force_through_last_day if {
	decide(breq("send", party("law.test"), [party("lpo.test")], pd(["DE"]), "2026-12-31T23:59:59Z")).allow == true
}

test_gdpr_no_scc_on_file if {
	d := decide(breq("send", party("law.test"), [party("old.test")], pd(["EU"]), "2026-03-01T00:00:00Z"))
	messages(d) == {"Personal data of EU/EEA subjects may go to CO only under SCCs or BCRs (CO has no EU adequacy decision); between law.test and old.test no BCR or SCC between them is on file"}
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

test_gdpr_only_for_personal_data_of_eea_subjects if {
	no_pd := {"matter": "M-1", "labels": ["financial"], "data_subject_regions": ["DE"]}
	decide(breq("send", party("law.test"), [party("old.test")], no_pd, "2026-03-01T00:00:00Z")).allow == true
	decide(breq("send", party("law.test"), [party("old.test")], pd(["BR"]), "2026-03-01T00:00:00Z")).allow == true
}

test_gdpr_intra_group_needs_bcr if {
	berlin := at("multi.test", "/paralegal/bob")
	ny := at("multi.test", "/ny/analyst")
	decide(breq("send", berlin, [ny], pd(["DE"]), t0)).allow == true
	codes(decide(breq("send", berlin, [ny], pd(["DE"]), "2026-07-01T00:00:00Z"))) == {"gdpr.no_transfer_mechanism"}
}

test_gdpr_rechecked_on_receive if {
	codes(decide(breq("receive", party("lpo.test"), [party("law.test")], pd(["DE"]), "2027-01-01T00:00:00Z"))) == {"gdpr.no_transfer_mechanism"}
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
