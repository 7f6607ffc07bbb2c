package lexgate_test

# pipl_orgs are the fixture organisations with cn.test's PIPL volumes:
# 150,000 people this year, none sensitive (the standard-contract route).
pipl_orgs := object.union(orgs, {"cn.test": object.union(orgs["cn.test"], {"pipl": {"personal_subjects": 150000, "sensitive_subjects": 0}})})

# pdecide decides x with pipl_orgs.
pdecide(x) := decide_world(x, {"organisations": pipl_orgs})

test_pipl_under_standard_contract_allowed if {
	pdecide(breq("send", party("cn.test"), [party("lpo.test")], pd(["CN"]), t0)).allow == true
}

test_pipl_without_contract_denied if {
	d := pdecide(breq("send", party("cn.test"), [party("law.test")], pd(["CN"]), t0))
	codes(d) == {"pipl.no_transfer_mechanism"}
	messages(d) == {"Personal information of subjects in China may go to DE only under the CAC standard contract (PIPL-SCC) or to a PIPL-certified recipient; between cn.test and law.test no PIPL-SCC between them is on file"}
}

test_pipl_certified_recipient_allowed if {
	pdecide(breq("send", party("cn.test"), [party("cert.test")], pd(["CN"]), t0)).allow == true
}

# The exporter is in mainland China through its organisation: a cn.test
# site in Hong Kong (outside mainland China) still exports under the PIPL.
test_pipl_organisation_in_china_site_elsewhere_denied if {
	hk := object.union(pipl_orgs["cn.test"], {"sites": [{"name": "Hong Kong", "paths": ["/hk/"], "jurisdiction": "HK"}]})
	d := decide_world(breq("send", at("cn.test", "/hk/x"), [party("law.test")], pd(["CN"]), t0), {"organisations": object.union(pipl_orgs, {"cn.test": hk})})
	"pipl.no_transfer_mechanism" in codes(d)
}
