# The legal case matrix: each test named after the provision it
# exercises, a refused case and the allowed case with the right
# instrument. A world of its own (lw_*), so that each case isolates one
# rule. Times: t0 (2026-06-01) unless stated.
package lexgate_test

lw_orgs := {
	"de-firm.test": {"name": "DE Firm", "kind": "law_firm", "jurisdiction": "DE", "certifications": ["ISO 27001"]},
	"de-lpo.test": {"name": "DE LPO", "kind": "lpo", "jurisdiction": "DE", "certifications": ["ISO 27001"]},
	"fr-proc.test": {"name": "FR Processor", "kind": "lpo", "jurisdiction": "FR", "certifications": ["ISO 27001"]},
	"fr-dpa.test": {"name": "FR Processor with DPA", "kind": "lpo", "jurisdiction": "FR", "certifications": ["ISO 27001"]},
	"ph-lpo.test": {
		"name": "PH LPO", "kind": "lpo", "jurisdiction": "PH",
		"sites": [{"name": "Manila", "paths": ["/m/"]}, {"name": "Cebu", "paths": ["/c/"]}],
		"certificates": [{"standard": "ISO 27001", "reference": "IS 700001", "sites": ["Manila"], "expires": "2026-12-31"}],
	},
	"co-lpo.test": {"name": "CO LPO", "kind": "lpo", "jurisdiction": "CO"},
	"in-lpo.test": {
		"name": "IN LPO", "kind": "lpo", "jurisdiction": "IN",
		"sites": [{"name": "Pune", "paths": ["/"]}, {"name": "Singapore", "paths": ["/sg/"], "jurisdiction": "SG"}],
	},
	"us-lpo.test": {"name": "US LPO (DPF)", "kind": "lpo", "jurisdiction": "US", "certifications": ["EU-US DPF"]},
	"us-plain.test": {"name": "US LPO", "kind": "lpo", "jurisdiction": "US"},
	"us-firm.test": {"name": "US Firm", "kind": "law_firm", "jurisdiction": "US"},
	"us-court.test": {"name": "US District Court", "kind": "court", "jurisdiction": "US"},
	"br-lpo.test": {"name": "BR LPO", "kind": "lpo", "jurisdiction": "BR"},
	"jp-lpo.test": {"name": "JP LPO (APPI)", "kind": "lpo", "jurisdiction": "JP", "certifications": ["APPI"]},
	"jp-agency.test": {"name": "JP agency", "kind": "authority", "jurisdiction": "JP"},
	"uk-firm.test": {"name": "UK Firm", "kind": "law_firm", "jurisdiction": "GB"},
	"ch-firm.test": {"name": "CH Firm", "kind": "law_firm", "jurisdiction": "CH"},
	"ru-lpo.test": {"name": "RU LPO", "kind": "lpo", "jurisdiction": "RU"},
	"ua-office.test": {"name": "UA office", "kind": "lpo", "jurisdiction": "UA", "sites": [{"name": "Simferopol", "paths": ["/crimea/"], "region": "UA-43"}, {"name": "Kyiv", "paths": ["/"], "region": "UA-30"}]},
	"sy-office.test": {"name": "SY office", "kind": "lpo", "jurisdiction": "SY"},
	"cn-small.test": {"name": "CN small", "kind": "law_firm", "jurisdiction": "CN", "pipl": {"personal_subjects": 50000, "sensitive_subjects": 0}},
	"cn-mid.test": {"name": "CN mid", "kind": "law_firm", "jurisdiction": "CN", "pipl": {"personal_subjects": 150000, "sensitive_subjects": 0}},
	"cn-big.test": {"name": "CN big", "kind": "law_firm", "jurisdiction": "CN", "pipl": {"personal_subjects": 2000000, "sensitive_subjects": 0}},
	"cn-assessed.test": {"name": "CN assessed", "kind": "law_firm", "jurisdiction": "CN", "pipl": {"personal_subjects": 2000000, "sensitive_subjects": 0, "security_assessment": {"reference": "CAC-2025-1", "date": "2025-03-01", "expires": "2028-02-29"}}},
	"cn-sensitive.test": {"name": "CN sensitive", "kind": "law_firm", "jurisdiction": "CN", "pipl": {"personal_subjects": 20000, "sensitive_subjects": 20000}},
	"cn-ciio.test": {"name": "CN CIIO", "kind": "law_firm", "jurisdiction": "CN", "pipl": {"personal_subjects": 10, "sensitive_subjects": 0, "ciio": true}},
	"cn-unknown.test": {"name": "CN unknown volumes", "kind": "law_firm", "jurisdiction": "CN"},
	"hk-lpo.test": {"name": "HK LPO", "kind": "lpo", "jurisdiction": "HK"},
}

lw_tia := {"reference": "TIA", "date": "2026-01-15"}

lw_scc(a, b) := {"parties": [a, b], "kind": "SCC", "signed": "2025-01-01", "version": "2021/914", "module": 2, "tia": lw_tia}

lw_nda(a, b) := {"parties": [a, b], "kind": "NDA", "signed": "2025-01-01"}

lw_agreements := array.concat(
	[lw_nda("de-firm.test", td) | some td, _ in lw_orgs; td != "de-firm.test"],
	[
		lw_scc("de-firm.test", "ph-lpo.test"),
		object.union(lw_scc("de-firm.test", "co-lpo.test"), {"version": "2010/87"}),
		lw_scc("de-firm.test", "in-lpo.test"),
		object.remove(lw_scc("de-firm.test", "us-plain.test"), ["tia"]),
		object.union(lw_scc("de-firm.test", "br-lpo.test"), {"tia": {"reference": "TIA-old", "date": "2024-01-01"}}),
		{"parties": ["de-firm.test", "us-lpo.test"], "kind": "DPA", "signed": "2025-01-01"},
		{"parties": ["de-firm.test", "fr-dpa.test"], "kind": "DPA", "signed": "2025-01-01"},
		{"parties": ["de-firm.test", "jp-lpo.test"], "kind": "DPA", "signed": "2025-01-01"},
		{"parties": ["de-firm.test", "de-lpo.test"], "kind": "DPA", "signed": "2025-01-01"},
		object.union(lw_scc("de-firm.test", "us-firm.test"), {"module": 1, "roles": {"de-firm.test": "controller", "us-firm.test": "controller"}}),
		lw_scc("de-firm.test", "ru-lpo.test"),
		lw_nda("uk-firm.test", "ph-lpo.test"),
		{"parties": ["uk-firm.test", "ph-lpo.test"], "kind": "UK-ADDENDUM", "signed": "2025-01-01"},
		lw_nda("uk-firm.test", "in-lpo.test"),
		{"parties": ["uk-firm.test", "in-lpo.test"], "kind": "IDTA", "signed": "2025-01-01", "tia": lw_tia},
		{"parties": ["uk-firm.test", "in-lpo.test"], "kind": "DPA", "signed": "2025-01-01"},
		lw_nda("uk-firm.test", "co-lpo.test"),
		{"parties": ["uk-firm.test", "co-lpo.test"], "kind": "UK-ADDENDUM", "signed": "2025-01-01"},
		lw_scc("uk-firm.test", "co-lpo.test"),
		lw_nda("ch-firm.test", "ph-lpo.test"),
		lw_nda("ch-firm.test", "in-lpo.test"),
		lw_scc("ch-firm.test", "in-lpo.test"),
		lw_nda("us-firm.test", "co-lpo.test"),
		lw_nda("cn-small.test", "ph-lpo.test"),
		lw_nda("cn-mid.test", "ph-lpo.test"),
		{"parties": ["cn-mid.test", "ph-lpo.test"], "kind": "PIPL-SCC", "signed": "2025-01-01"},
		lw_nda("cn-mid.test", "hk-lpo.test"),
		lw_nda("cn-big.test", "ph-lpo.test"),
		{"parties": ["cn-big.test", "ph-lpo.test"], "kind": "PIPL-SCC", "signed": "2025-01-01"},
		lw_nda("cn-assessed.test", "ph-lpo.test"),
		lw_nda("cn-sensitive.test", "ph-lpo.test"),
		{"parties": ["cn-sensitive.test", "ph-lpo.test"], "kind": "PIPL-SCC", "signed": "2025-01-01"},
		lw_nda("cn-ciio.test", "ph-lpo.test"),
		lw_nda("cn-unknown.test", "ph-lpo.test"),
		lw_nda("cn-small.test", "us-court.test"),
	],
)

# lw_matter is an open matter of de-firm.test: every organisation
# permitted, the client's consent covering every one, a supervising lawyer.
lw_matter(extra) := object.union(
	{
		"client": "Client", "owner": "de-firm.test",
		"client_consents": [{"reference": "CONSENT-ALL", "given": "2025-01-01", "organisations": [td | some td, _ in lw_orgs]}],
		"permitted_recipients": {"organisations": [td | some td, _ in lw_orgs]},
		"supervising_lawyer": "spiffe://de-firm.test/partner/pat",
	},
	extra,
)

lw_matters := {
	"L-PD": lw_matter({"categories": ["personal-data"], "data_subject_jurisdictions": ["DE"]}),
	"L-US": lw_matter({"categories": ["personal-data"], "data_subject_jurisdictions": ["US"]}),
	"L-GB": lw_matter({"categories": ["personal-data"], "data_subject_jurisdictions": ["GB"]}),
	"L-CH": lw_matter({"categories": ["personal-data"], "data_subject_jurisdictions": ["CH"]}),
	"L-CN": lw_matter({"categories": ["personal-data"], "data_subject_jurisdictions": ["CN"]}),
	"L-CN-HR": lw_matter({"categories": ["personal-data"], "data_subject_jurisdictions": ["CN"], "pipl_exemption": "hr"}),
	"L-CN-JUD": lw_matter({"data_subject_jurisdictions": ["CN"], "pipl_judicial_approval": {"reference": "MOJ-2026-17", "authority": "Ministry of Justice", "date": "2026-05-02"}}),
	"L-49": lw_matter({
		"categories": ["personal-data"], "data_subject_jurisdictions": ["DE"],
		"derogations": [{"article": "49(1)(e)", "justification": "establishment of legal claims in Bogotá proceedings", "countries": ["CO"]}],
	}),
	"L-PLAIN": lw_matter({}),
	"L-CONF": lw_matter({"categories": ["client-confidential"]}),
	"L-CONF-NOLAWYER": object.remove(lw_matter({"categories": ["client-confidential"]}), ["supervising_lawyer"]),
	"L-CONF-PHONLY": object.union(lw_matter({"categories": ["client-confidential"]}), {"client_consents": [{"reference": "PH-ONLY", "given": "2025-01-01", "countries": ["PH"]}]}),
	"L-PRIV": lw_matter({"categories": ["privileged"]}),
	"L-PHI": lw_matter({"categories": ["phi"], "data_subject_jurisdictions": ["US"], "client_baa": {"reference": "BAA-CLIENT", "signed": "2025-01-01", "expires": "2027-01-31"}}),
	"L-PHI-NOBAA": lw_matter({"categories": ["phi"], "data_subject_jurisdictions": ["US"]}),
	"L-EXP": lw_matter({"categories": ["export-controlled"], "export_control": [{"authorisation": "licence", "reference": "BAFA-2026-0001", "countries": ["PH"], "expires": "2026-12-31"}]}),
	"L-EXP-NONE": lw_matter({"categories": ["export-controlled"]}),
	"L-RU": lw_matter({"sanctions_signoff": [{"reference": "COMPLIANCE-2026-12", "by": "spiffe://de-firm.test/compliance/cora", "date": "2026-05-20", "countries": ["RU"]}]}),
}

lw_world := {
	"organisations": lw_orgs, "agreements": lw_agreements, "matters": lw_matters,
	"settings": {"tia_max_age_days": 365},
	"jurisdictions": lw_jurisdictions,
}

lw_jurisdictions := {
	"eu_eea": ["DE", "FR", "IE"],
	"gdpr_adequacy": {
		"JP": {"from": "2019-01-23", "scope": "partial", "requires": "APPI", "source": "2019/419"},
		"US": {"from": "2023-07-10", "scope": "certified", "requires": "EU-US DPF", "source": "2023/1795"},
		"BR": {"from": "2026-01-28", "scope": "full", "source": "2026/179"},
		"GB": {"from": "2021-06-28", "until": "2031-12-27", "scope": "full", "source": "2021/1772"},
		"CH": {"from": "2000-07-26", "scope": "full", "source": "2000/518/EC"},
	},
	"uk_adequacy": {"JP": {"from": "2021-01-01", "scope": "partial", "requires": "APPI", "source": "UK regs"}},
	"ch_adequacy": {"GB": {"from": "2023-09-01", "scope": "full", "source": "Annex 1 DPO"}},
	"embargoed": {},
	"sanctions": {
		"EU": {
			"RU": {"tier": "restricted", "from": "2014-07-31", "source": "Regulation (EU) 833/2014"},
			"UA-43": {"tier": "embargo", "from": "2014-06-23", "source": "Regulation (EU) 692/2014"},
			"SY": {"tier": "restricted", "from": "2012-01-18", "until": "2025-05-27", "source": "Regulation (EU) 36/2012"},
		},
		"US": {"SY": {"tier": "embargo", "from": "2011-08-17", "until": "2025-06-30", "source": "EO 13582; EO 14312"}},
	},
}

# lw decides x in the legal world.
lw(x) := decide_world(x, lw_world)

# lw_at decides x in the legal world with documents of w replaced.
lw_at(x, w) := decide_world(x, object.union(lw_world, w))

# lsend is a send from td (identity /user, or the path given as "td/path")
# to recipients on matter m, with sender labels and regions, at t0.
lsend(from, to, m, labels, regions) := breq("send", lparty(from), [lparty(d) | some d in to], {"matter": m, "labels": labels, "data_subject_regions": regions}, t0)

# lparty is a party "td" (path /user) or "td/path".
lparty(s) := at(parts[0], concat("", ["/", concat("/", array.slice(parts, 1, count(parts)))])) if {
	parts := split(s, "/")
	count(parts) > 1
} else := party(s)

lcodes(x) := codes(lw(x))

# --- GDPR: scope (Art. 3, Art. 44; EDPB Guidelines 05/2021) --------------

test_art44_exporter_in_eu_subjects_in_us_needs_mechanism if {
	d := lw_at(lsend("de-firm.test", ["co-lpo.test"], "L-US", [], []), {"agreements": [lw_nda("de-firm.test", "co-lpo.test")]})
	"gdpr.no_transfer_mechanism" in codes(d)
}

test_art44_exporter_in_eu_subjects_in_us_allowed_under_scc if {
	lw(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-US", [], [])).allow == true
}

test_art3_2_exporter_outside_eu_subjects_in_eu_needs_mechanism if {
	"gdpr.no_transfer_mechanism" in lcodes(lsend("us-firm.test", ["co-lpo.test"], "L-PD", [], []))
}

test_art3_exporter_outside_eu_subjects_outside_eu_not_reached if {
	not "gdpr.no_transfer_mechanism" in lcodes(lsend("us-firm.test", ["co-lpo.test"], "L-US", [], []))
}

test_art44_within_eea_no_mechanism_needed if {
	lw(lsend("de-firm.test", ["fr-dpa.test"], "L-PD", [], [])).allow == true
}

test_art44_personal_data_with_no_jurisdiction_refused if {
	lcodes(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PLAIN", ["personal-data"], [])) == {"classification.no_jurisdiction"}
}

# --- GDPR Art. 45: adequacy, dated and scoped -----------------------------

test_art45_adequacy_counts_from_its_decision_brazil if {
	# Brazil's SCCs rest on a stale TIA; adequacy (Decision 2026/179) lifts the need.
	x := lsend("de-firm.test", ["br-lpo.test"], "L-PD", [], [])
	lw(x).allow == true
	"gdpr.tia_stale" in codes(lw(object.union(x, {"time": "2026-01-27T12:00:00Z"})))
}

test_art45_adequacy_until_lapses if {
	w := {"jurisdictions": object.union(lw_jurisdictions, {"gdpr_adequacy": {"BR": {"from": "2026-01-28", "until": "2026-05-31", "scope": "full", "source": "x"}}})}
	"gdpr.tia_stale" in codes(lw_at(lsend("de-firm.test", ["br-lpo.test"], "L-PD", [], []), w))
}

test_art45_dpf_certified_recipient_adequate if {
	lw(lsend("de-firm.test", ["us-lpo.test"], "L-PD", [], [])).allow == true
}

test_art45_dpf_uncertified_recipient_needs_scc_with_tia if {
	lcodes(lsend("de-firm.test", ["us-plain.test"], "L-PD", [], [])) == {"gdpr.tia_missing"}
}

test_art45_partial_decision_japan_appi_business_adequate if {
	lw(lsend("de-firm.test", ["jp-lpo.test"], "L-PD", [], [])).allow == true
}

test_art45_partial_decision_japan_outside_scope_needs_mechanism if {
	"gdpr.no_transfer_mechanism" in lcodes(lsend("de-firm.test", ["jp-agency.test"], "L-PD", [], []))
}

test_art45_uk_adequacy_until_2031 if {
	lw(lsend("de-firm.test", ["uk-firm.test"], "L-PD", [], [])).allow == true
	x := object.union(lsend("de-firm.test", ["uk-firm.test"], "L-PD", [], []), {"time": "2031-12-28T00:00:00Z"})
	"gdpr.no_transfer_mechanism" in codes(lw(x))
}

# --- GDPR Art. 46: SCCs of 2021/914, coverage, TIA -------------------------

test_art46_scc_2010_87_void_since_2022_12_27 if {
	d := lw(lsend("de-firm.test", ["co-lpo.test"], "L-PD", [], []))
	"gdpr.scc_outdated" in codes(d)
	some r in d.reasons
	r.code == "gdpr.scc_outdated"
	contains(r.message, "2010/87")
}

test_art46_scc_2021_914_allowed if {
	lw(lsend("de-firm.test", ["in-lpo.test"], "L-PD", [], [])).allow == true
}

test_art46_scc_does_not_cover_site_in_other_country if {
	d := lw(lsend("de-firm.test", ["in-lpo.test/sg/x"], "L-PD", [], []))
	codes(d) == {"gdpr.destination_not_covered"}
}

test_art46_scc_covering_site_allowed if {
	ags := [object.union(a, {"covers": {"countries": ["IN", "SG"]}}) | some a in lw_agreements; a.kind == "SCC"; a.parties[1] == "in-lpo.test"]
	w := {"agreements": array.concat([a | some a in lw_agreements; not a.kind == "SCC"], ags)}
	lw_at(lsend("de-firm.test", ["in-lpo.test/sg/x"], "L-PD", [], []), w).allow == true
}

test_art46_scc_without_tia_refused if {
	lcodes(lsend("de-firm.test", ["us-plain.test"], "L-PD", [], [])) == {"gdpr.tia_missing"}
}

test_art46_tia_older_than_max_age_refused if {
	x := object.union(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PD", [], []), {"time": "2027-01-16T00:00:00Z"})
	"gdpr.tia_stale" in codes(lw(x))
}

test_art46_tia_within_max_age_allowed if {
	x := object.union(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PD", [], []), {"time": "2026-12-31T00:00:00Z"})
	not "gdpr.tia_stale" in codes(lw(x))
}

test_art46_tia_max_age_set_by_the_firm if {
	w := {"settings": {"tia_max_age_days": 90}}
	"gdpr.tia_stale" in codes(lw_at(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PD", [], []), w))
}

test_art46_tia_dated_after_the_transfer_does_not_count if {
	x := object.union(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PD", [], []), {"time": "2026-01-14T00:00:00Z"})
	"gdpr.tia_stale" in codes(lw(x))
}

# --- GDPR Art. 49: derogations recorded on the matter ---------------------

test_art49_1_e_legal_claims_derogation_allows_and_is_noted if {
	d := lw(lsend("de-firm.test", ["co-lpo.test"], "L-49", [], []))
	not "gdpr.scc_outdated" in codes(d)
	d.notes == [{"code": "gdpr.art49_derogation", "message": "transfer to co-lpo.test (CO) relies on the GDPR Art. 49(1)(e) derogation recorded on matter L-49: establishment of legal claims in Bogotá proceedings"}]
}

test_art49_derogation_limited_to_its_countries if {
	"gdpr.tia_missing" in lcodes(lsend("de-firm.test", ["us-plain.test"], "L-49", [], []))
}

test_art49_no_notes_without_derogation if {
	lw(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PD", [], [])).notes == []
}

# --- GDPR Art. 28: processors ----------------------------------------------

test_art28_processor_in_eea_needs_processor_contract if {
	lcodes(lsend("de-firm.test", ["fr-proc.test"], "L-PD", [], [])) == {"gdpr.no_processor_contract"}
}

test_art28_processor_with_dpa_allowed if {
	lw(lsend("de-firm.test", ["fr-dpa.test"], "L-PD", [], [])).allow == true
}

test_art28_scc_module_2_is_a_processor_contract if {
	lw(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PD", [], [])).allow == true
}

test_art28_scc_module_1_is_not_a_processor_contract if {
	ags := [object.union(a, {"module": 1}) | some a in lw_agreements; a.kind == "SCC"; a.parties[1] == "ph-lpo.test"]
	w := {"agreements": array.concat([a | some a in lw_agreements; not a.kind == "SCC"], ags)}
	"gdpr.no_processor_contract" in codes(lw_at(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PD", [], []), w))
}

test_art28_controller_role_recorded_needs_no_processor_contract if {
	lw(lsend("de-firm.test", ["us-firm.test"], "L-PD", [], [])).allow == true
}

test_art28_not_for_non_personal_data if {
	lw(lsend("de-firm.test", ["fr-proc.test"], "L-PLAIN", [], [])).allow == true
}

# --- UK GDPR ----------------------------------------------------------------

test_uk_gdpr_art46_addendum_without_eu_scc_refused if {
	lcodes(lsend("uk-firm.test", ["ph-lpo.test/m/x"], "L-US", [], [])) == {"uk_gdpr.addendum_without_scc", "gdpr.no_processor_contract"}
}

test_uk_gdpr_art46_addendum_with_eu_scc_allowed if {
	lw(lsend("uk-firm.test", ["co-lpo.test"], "L-US", [], [])).allow == true
}

test_uk_gdpr_art46_idta_allowed if {
	lw(lsend("uk-firm.test", ["in-lpo.test"], "L-US", [], [])).allow == true
}

test_uk_gdpr_exporter_in_uk_subjects_elsewhere_needs_mechanism if {
	w := {"agreements": [lw_nda("uk-firm.test", "us-plain.test")]}
	"uk_gdpr.no_transfer_mechanism" in codes(lw_at(lsend("uk-firm.test", ["us-plain.test"], "L-US", [], []), w))
}

test_uk_gdpr_subjects_in_uk_exporter_elsewhere_needs_mechanism if {
	"uk_gdpr.no_transfer_mechanism" in lcodes(lsend("us-firm.test", ["co-lpo.test"], "L-GB", [], []))
}

test_uk_gdpr_partial_adequacy_japan if {
	not "uk_gdpr.no_transfer_mechanism" in lcodes(lsend("uk-firm.test", ["jp-lpo.test"], "L-US", [], []))
}

# --- Swiss FADP Art. 16 -----------------------------------------------------

test_fadp_art16_exporter_in_ch_needs_scc if {
	"fadp.no_transfer_mechanism" in lcodes(lsend("ch-firm.test", ["ph-lpo.test/m/x"], "L-US", [], []))
}

test_fadp_art16_scc_allowed if {
	not "fadp.no_transfer_mechanism" in lcodes(lsend("ch-firm.test", ["in-lpo.test"], "L-US", [], []))
}

test_fadp_art16_subjects_in_ch_exporter_elsewhere if {
	"fadp.no_transfer_mechanism" in lcodes(lsend("us-firm.test", ["co-lpo.test"], "L-CH", [], []))
}

test_fadp_art16_adequate_country_gb if {
	not "fadp.no_transfer_mechanism" in lcodes(lsend("ch-firm.test", ["uk-firm.test"], "L-US", [], []))
}

# --- PIPL and the 2024 Provisions ------------------------------------------

test_pipl_art38_keyed_on_exporter_in_china if {
	# A German firm's data of Chinese subjects to Manila: no PIPL export.
	not "pipl.no_transfer_mechanism" in lcodes(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-CN", [], []))
}

test_pipl_provisions_art5_under_100000_exempt if {
	lw(lsend("cn-small.test", ["ph-lpo.test/m/x"], "L-US", [], [])).allow == true
}

test_pipl_provisions_art8_standard_contract_route if {
	lw(lsend("cn-mid.test", ["ph-lpo.test/m/x"], "L-US", [], [])).allow == true
}

test_pipl_provisions_art8_standard_contract_missing_refused if {
	lcodes(lsend("cn-mid.test", ["hk-lpo.test"], "L-US", [], [])) == {"pipl.no_transfer_mechanism"}
}

test_pipl_hong_kong_is_outside_mainland if {
	"pipl.no_transfer_mechanism" in lcodes(lsend("cn-mid.test", ["hk-lpo.test"], "L-US", [], []))
}

test_pipl_provisions_art5_hr_exemption_recorded_on_matter if {
	lw(lsend("cn-mid.test", ["hk-lpo.test"], "L-CN-HR", [], [])).allow == true
}

test_pipl_provisions_art7_over_1_million_needs_security_assessment if {
	lcodes(lsend("cn-big.test", ["ph-lpo.test/m/x"], "L-US", [], [])) == {"pipl.security_assessment_required"}
}

test_pipl_provisions_art7_security_assessment_in_force_allowed if {
	lw(lsend("cn-assessed.test", ["ph-lpo.test/m/x"], "L-US", [], [])).allow == true
}

test_pipl_provisions_art7_security_assessment_expired if {
	x := object.union(lsend("cn-assessed.test", ["ph-lpo.test/m/x"], "L-US", [], []), {"time": "2028-03-01T00:00:00Z"})
	"pipl.security_assessment_required" in codes(lw(x))
}

test_pipl_provisions_art7_sensitive_over_10000_needs_assessment if {
	lcodes(lsend("cn-sensitive.test", ["ph-lpo.test/m/x"], "L-US", [], [])) == {"pipl.security_assessment_required"}
}

test_pipl_provisions_art7_ciio_needs_assessment if {
	lcodes(lsend("cn-ciio.test", ["ph-lpo.test/m/x"], "L-US", [], [])) == {"pipl.security_assessment_required"}
}

test_pipl_volumes_unknown_refused if {
	lcodes(lsend("cn-unknown.test", ["ph-lpo.test/m/x"], "L-US", [], [])) == {"pipl.volumes_unknown"}
}

test_pipl_art41_dsl_art36_foreign_court_without_approval_refused if {
	lcodes(lsend("cn-small.test", ["us-court.test"], "L-PLAIN", [], [])) == {"pipl.foreign_judicial_request"}
}

test_pipl_art41_dsl_art36_foreign_court_with_approval_allowed if {
	lw(lsend("cn-small.test", ["us-court.test"], "L-CN-JUD", [], [])).allow == true
}

# --- Confidentiality: ABA 08-451, 477R; Model Rules 1.6, 5.1, 5.3 -----------

test_aba_08_451_confidential_to_onshore_provider_needs_consent if {
	lcodes(lsend("de-firm.test", ["de-lpo.test"], "L-CONF-PHONLY", [], [])) == {"confidentiality.no_client_consent"}
}

test_aba_08_451_confidential_with_consent_allowed if {
	lw(lsend("de-firm.test", ["de-lpo.test"], "L-CONF", [], [])).allow == true
}

test_aba_08_451_rule_5_3_supervising_lawyer_needed if {
	lcodes(lsend("de-firm.test", ["de-lpo.test"], "L-CONF-NOLAWYER", [], [])) == {"confidentiality.no_supervising_lawyer"}
}

test_aba_08_451_offshore_consent_not_covering if {
	"consent.not_covering" in lcodes(lsend("de-firm.test", ["in-lpo.test"], "L-CONF-PHONLY", [], []))
}

test_aba_477r_confidential_needs_iso27001_site if {
	lcodes(lsend("de-firm.test", ["co-lpo.test"], "L-CONF", [], [])) == {"confidentiality.no_iso27001"}
}

test_aba_477r_confidential_needs_nda if {
	w := {"agreements": [{"parties": ["de-firm.test", "de-lpo.test"], "kind": "DPA", "signed": "2025-01-01"}]}
	"confidentiality.no_nda" in codes(lw_at(lsend("de-firm.test", ["de-lpo.test"], "L-CONF", [], []), w))
}

test_certificate_scope_covers_its_sites_only if {
	lw(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PRIV", [], [])).allow == true
	lcodes(lsend("de-firm.test", ["ph-lpo.test/c/x"], "L-PRIV", [], [])) == {"privilege.no_iso27001"}
}

test_certificate_expiry if {
	x := object.union(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PRIV", [], []), {"time": "2027-01-02T00:00:00Z"})
	"privilege.no_iso27001" in codes(lw(x))
}

# --- HIPAA: 45 CFR 164.502(e), 164.504(e) ----------------------------------

test_hipaa_164_502e_phi_needs_client_baa_on_matter if {
	"hipaa.no_client_baa" in lcodes(lsend("de-firm.test", ["us-lpo.test"], "L-PHI-NOBAA", [], []))
}

test_hipaa_164_504e_subcontractor_needs_firm_baa if {
	lcodes(lsend("de-firm.test", ["us-lpo.test"], "L-PHI", [], [])) == {"hipaa.no_baa"}
}

test_hipaa_baa_chain_complete_allowed if {
	w := {"agreements": array.concat(lw_agreements, [{"parties": ["de-firm.test", "us-lpo.test"], "kind": "BAA", "signed": "2025-01-01"}])}
	lw_at(lsend("de-firm.test", ["us-lpo.test"], "L-PHI", [], []), w).allow == true
}

test_hipaa_phi_category_not_removable_by_sender_label if {
	# The sender labels it special-category: the matter's phi category still applies.
	"hipaa.no_baa" in lcodes(lsend("de-firm.test", ["us-lpo.test"], "L-PHI", ["special-category"], []))
}

test_hipaa_client_baa_expired if {
	w := {"agreements": array.concat(lw_agreements, [{"parties": ["de-firm.test", "us-lpo.test"], "kind": "BAA", "signed": "2025-01-01"}])}
	x := object.union(lsend("de-firm.test", ["us-lpo.test"], "L-PHI", [], []), {"time": "2027-02-01T00:00:00Z"})
	"hipaa.no_client_baa" in codes(lw_at(x, w))
}

# --- Export control: EAR, ITAR, EU 2021/821 --------------------------------

test_export_control_ear_itar_licence_covers_country if {
	lw(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-EXP", [], [])).allow == true
}

test_export_control_no_licence_refused if {
	lcodes(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-EXP-NONE", [], [])) == {"export.no_authorisation"}
}

test_export_control_licence_not_covering_country if {
	"export.no_authorisation" in lcodes(lsend("de-firm.test", ["in-lpo.test"], "L-EXP", [], []))
}

test_export_control_deemed_export_nationalities if {
	w := {"organisations": object.union(lw_orgs, {"ph-lpo.test": object.union(lw_orgs["ph-lpo.test"], {"nationalities": ["PH", "CN"]})})}
	"export.no_authorisation" in codes(lw_at(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-EXP", [], []), w))
}

test_export_control_sender_label_adds_restriction if {
	lcodes(lsend("de-firm.test", ["ph-lpo.test/m/x"], "L-PLAIN", ["export-controlled"], [])) == {"export.no_authorisation"}
}

test_export_control_same_country_needs_no_licence if {
	lw(lsend("de-firm.test", ["de-lpo.test"], "L-PLAIN", ["export-controlled"], [])).allow == true
}

# --- Sanctions: EU, US, UK regimes by nexus ----------------------------------

test_sanctions_eu_reg_833_2014_restricted_needs_signoff if {
	lcodes(lsend("de-firm.test", ["ru-lpo.test"], "L-PLAIN", [], [])) == {"sanctions.restricted_no_signoff"}
}

test_sanctions_eu_reg_833_2014_signoff_recorded_allowed if {
	lw(lsend("de-firm.test", ["ru-lpo.test"], "L-RU", [], [])).allow == true
}

test_sanctions_eu_reg_692_2014_crimea_region_embargoed if {
	lcodes(lsend("de-firm.test", ["ua-office.test/crimea/x"], "L-PLAIN", [], [])) == {"sanctions.embargoed"}
	lw(lsend("de-firm.test", ["ua-office.test"], "L-PLAIN", [], [])).allow == true
}

test_sanctions_us_eo_14312_syria_lifted_2025_07_01 if {
	w := {"organisations": object.union(lw_orgs, {"de-firm.test": object.union(lw_orgs["de-firm.test"], {"sanctions_nexus": ["US"]})})}
	x := lsend("de-firm.test", ["sy-office.test"], "L-PLAIN", [], [])
	lw_at(x, w).allow == true
	"sanctions.embargoed" in codes(lw_at(object.union(x, {"time": "2025-06-30T12:00:00Z"}), w))
}

test_sanctions_eu_syria_lifted_2025_05_28 if {
	lw(lsend("de-firm.test", ["sy-office.test"], "L-PLAIN", [], [])).allow == true
	x := object.union(lsend("de-firm.test", ["sy-office.test"], "L-PLAIN", [], []), {"time": "2025-05-27T12:00:00Z"})
	"sanctions.restricted_no_signoff" in codes(lw(x))
}

test_sanctions_regime_only_with_nexus if {
	# A US firm has no EU nexus: the EU's Russia measures do not apply to it (its own do, not in this world).
	w := {"agreements": array.concat(lw_agreements, [lw_nda("us-firm.test", "ru-lpo.test")])}
	x := breq("send", party("us-firm.test"), [party("ru-lpo.test")], {"matter": "L-US-OWNED", "labels": []}, t0)
	lw_at(x, object.union(w, {"matters": object.union(lw_matters, {"L-US-OWNED": object.union(lw_matter({}), {"owner": "us-firm.test"})})})).allow == true
}

test_sanctions_screening_required_missing if {
	w := {"settings": {"tia_max_age_days": 365, "screening_max_age_days": 90}}
	lcodes(lsend("de-firm.test", ["de-lpo.test"], "L-PLAIN", [], [])) == set()
	codes(lw_at(lsend("de-firm.test", ["de-lpo.test"], "L-PLAIN", [], []), w)) == {"sanctions.screening_missing"}
}

test_sanctions_screening_stale_and_hit if {
	w := {"settings": {"screening_max_age_days": 90}}
	stale := {"organisations": object.union(lw_orgs, {"de-lpo.test": object.union(lw_orgs["de-lpo.test"], {"screening": {"lists": ["EU"], "date": "2026-01-01", "result": "clear"}})})}
	codes(lw_at(lsend("de-firm.test", ["de-lpo.test"], "L-PLAIN", [], []), object.union(w, stale))) == {"sanctions.screening_stale"}
	hit := {"organisations": object.union(lw_orgs, {"de-lpo.test": object.union(lw_orgs["de-lpo.test"], {"screening": {"lists": ["EU"], "date": "2026-05-01", "result": "possible match: ACME"}})})}
	codes(lw_at(lsend("de-firm.test", ["de-lpo.test"], "L-PLAIN", [], []), object.union(w, hit))) == {"sanctions.screening_hit"}
	clear := {"organisations": object.union(lw_orgs, {"de-lpo.test": object.union(lw_orgs["de-lpo.test"], {"screening": {"lists": ["EU"], "date": "2026-05-01", "result": "clear"}})})}
	lw_at(lsend("de-firm.test", ["de-lpo.test"], "L-PLAIN", [], []), object.union(w, clear)).allow == true
}

test_sanctions_nexus_recorded_for_a_firm_outside_the_regimes if {
	# A Philippine sender with a recorded US nexus observes the US embargo on Cuba.
	w := {
		"organisations": object.union(lw_orgs, {
			"ph-lpo.test": object.union(lw_orgs["ph-lpo.test"], {"sanctions_nexus": ["US"]}),
			"cu-office.test": {"name": "CU office", "kind": "lpo", "jurisdiction": "CU"},
		}),
		"agreements": array.concat(lw_agreements, [lw_nda("ph-lpo.test", "cu-office.test")]),
		"jurisdictions": object.union(lw_jurisdictions, {"sanctions": {"US": {"CU": {"tier": "embargo", "from": "1962-02-07", "source": "CACR"}}}}),
	}
	x := breq("register_key", lparty("ph-lpo.test/m/x"), [lparty("cu-office.test")], {}, t0)
	"sanctions.embargoed" in codes(lw_at(x, w))
}
