package lexgate

# China PIPL (Art. 38-41) and the Provisions on Promoting and Regulating
# Cross-Border Data Flows (CAC, in force 22 March 2024): personal
# information leaving mainland China. The rule keys on the exporter: a
# party whose site or organisation is in mainland China ("CN"; Hong Kong,
# Macao and Taiwan are outside it). It routes by the exporting
# organisation's cumulative volumes since 1 January (organisation data
# `pipl`, kept by the firm), as the Provisions do:
#
#   - a CAC security assessment in force (valid three years) when the
#     exporter is a critical information infrastructure operator, exports
#     important data, or has exported personal information of more than
#     1,000,000 people, or sensitive personal information of more than
#     10,000 people, this year (Provisions Art. 7);
#   - none when non-sensitive personal information of fewer than 100,000
#     people has been exported this year, or the matter records an
#     exemption (contract with the individual, HR management, emergency:
#     Provisions Art. 5);
#   - otherwise the CAC standard contract (kind "PIPL-SCC") in force, or a
#     recipient holding PIPL personal-information-protection certification
#     (Provisions Art. 8; PIPL Art. 38).
#
# Without the volumes on file the route cannot be chosen: refused.
# Providing data stored in China to a foreign judicial or enforcement body
# (organisation kind "court" or "authority") needs the approval of the
# competent Chinese authority recorded on the matter (PIPL Art. 41, Data
# Security Law Art. 36): without it, refused.

# pipl_kinds are the agreements that make such a transfer lawful.
pipl_kinds := {"PIPL-SCC"}

# pipl_certification lets a recipient take PIPL exports without a contract.
pipl_certification := "PIPL certification"

# pipl_exemptions are the exemptions a matter may record (Provisions Art. 5).
pipl_exemptions := {"contract", "hr", "emergency"}

# cn_exporter holds when party p is in mainland China.
cn_exporter(p) if p.jurisdiction == "CN"

else if p.organisation.jurisdiction == "CN"

# cn_in_play holds when some exporter of the request is in mainland China
# (places.rego, exporter_places): the PIPL rules look at no flow otherwise.
cn_in_play if "CN" in exporter_places

# pipl_flows are the flows of personal information out of mainland China:
# [from, to, the exporter's volumes record (or {})].
pipl_flows := [[from, to, object.get(data.data.organisations, [from.trust_domain, "pipl"], {})] |
	personal == true
	cn_in_play == true
	some [from, to] in org_flows # places.rego: both parties known
	cn_exporter(from)
	to.jurisdiction != "CN"
]

# pipl_route is the route the Provisions give an exporter with volumes v:
# "assessment", "exempt" or "contract".
pipl_route(v) := "assessment" if {
	pipl_assessment_needed(v)
} else := "exempt" if {
	object.get(v, "sensitive_subjects", 0) == 0
	v.personal_subjects < 100000
} else := "exempt" if {
	matter_record.pipl_exemption in pipl_exemptions
} else := "contract"

pipl_assessment_needed(v) if v.ciio == true

else if v.important_data == true

else if v.personal_subjects > 1000000

else if v.sensitive_subjects > 10000

# pipl_assessment_in_force holds when the exporter's CAC security
# assessment is in force (issued, not expired).
pipl_assessment_in_force(v) if {
	a := v.security_assessment
	a.date <= today
	not entry_lapsed({"until": object.get(a, "expires", "9999-12-31")})
}

personal_denies contains {
	"code": "pipl.volumes_unknown",
	"message": sprintf("personal information leaving mainland China from %s: the route (CAC security assessment, standard contract or exemption) depends on its exports since 1 January, and none are on file (organisation data pipl: personal_subjects, sensitive_subjects, ciio, important_data)", [from.trust_domain]),
} if {
	some [from, _, v] in pipl_flows
	not is_number(object.get(v, "personal_subjects", null)) # (a ref in a call is evaluated outside `not`)
}

personal_denies contains {
	"code": "pipl.security_assessment_required",
	"message": sprintf("%s exports personal information from mainland China above the thresholds of the 2024 Provisions (Art. 7: CIIO, important data, over 1,000,000 people or 10,000 people's sensitive personal information this year): it needs a CAC security assessment in force before sending to %s", [from.trust_domain, to.trust_domain]),
} if {
	some [from, to, v] in pipl_flows
	is_number(v.personal_subjects)
	pipl_route(v) == "assessment"
	not pipl_assessment_in_force(v)
}

personal_denies contains {
	"code": "pipl.no_transfer_mechanism",
	"message": sprintf("Personal information of subjects in China may go to %s only under the CAC standard contract (PIPL-SCC) or to a PIPL-certified recipient; between %s and %s %s", [
		to.jurisdiction, from.trust_domain, to.trust_domain,
		why_not(from.trust_domain, to.trust_domain, pipl_kinds),
	]),
} if {
	some [from, to, v] in pipl_flows
	is_number(v.personal_subjects)
	pipl_route(v) == "contract"
	count(in_force_kinds(from.trust_domain, to.trust_domain) & pipl_kinds) == 0
	not pipl_certification in object.get(to, "certifications", []) # certifications(to)
}

# foreign_authority_kinds are the kinds of organisation that are foreign
# judicial or enforcement bodies.
foreign_authority_kinds := {"court", "authority"}

deny contains {
	"code": "pipl.foreign_judicial_request",
	"message": sprintf("%s is a foreign judicial or enforcement body: data stored in mainland China may be provided to it only with the approval of the competent Chinese authority (PIPL Art. 41, Data Security Law Art. 36), which matter %s does not record (pipl_judicial_approval)", [
		to.trust_domain, matter_id,
	]),
} if {
	cn_in_play == true
	some [from, to] in flows
	cn_exporter(from)
	to.organisation.kind in foreign_authority_kinds
	to.jurisdiction != "CN"
	not matter_record.pipl_judicial_approval.reference
}
