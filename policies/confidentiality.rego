package lexgate

# Client confidences with outsourcing providers. Material labelled
# `client-confidential` or `privileged` may go to an outsourcing provider
# (an organisation of kind "lpo", other than the matter's owner) only with
# the client's informed consent in force covering the provider (its
# organisation or country) and a supervising lawyer named on the matter:
# ABA Formal Opinion 08-451 (outsourcing legal and nonlegal support
# services), Model Rules 1.6 (confidentiality), 5.1 and 5.3 (supervision).
# Offshore providers are refused for a missing consent by matters.rego
# already (consent.*); this adds onshore providers and the supervisor.
#
# `client-confidential` material, like privileged material
# (privilege.rego), may only go to a site holding ISO 27001 and to another
# organisation under an NDA in force (ABA Formal Opinion 477R: reasonable
# efforts to secure client communications).
#
# Certifications may be recorded per organisation with their scope and
# expiry (organisation `certificates`: standard, sites, expires,
# reference). When an organisation records certificates, a party holds a
# standard only through a certificate in force whose `sites` (all of the
# organisation's when absent) include the party's site.

# confidential_labels are the labels that bring these rules in.
confidential_labels := {"client-confidential", "privileged"}

# The rules below add to confidential_denies, which counts only for
# confidential material.
deny contains r if {
	count(labels & confidential_labels) > 0
	some r in confidential_denies
}

# provider holds when party p is an outsourcing provider for the matter.
provider(p) if {
	p.organisation.kind == "lpo"
	p.trust_domain != matter_owner
}

# confidential_providers are the recipients of the flows that are
# outsourcing providers, for confidential material of a known matter.
confidential_providers := [to |
	count(labels & confidential_labels) > 0
	matter != false
	some [_, to] in flows
	provider(to)
]

confidential_denies contains {
	"code": "confidentiality.no_client_consent",
	"message": sprintf("%s is an outsourcing provider: %s material of matter %s may go to it only with the client's informed consent covering it (ABA Formal Opinion 08-451; Model Rule 1.6), and none in force does; record the consent on the matter", [
		who(to), concat(" and ", sort(labels & confidential_labels)), matter_id,
	]),
} if {
	some to in confidential_providers
	not consented(to)
	not to in offshore # refused as consent.* already
}

confidential_denies contains {
	"code": "confidentiality.no_supervising_lawyer",
	"message": sprintf("matter %s names no supervising lawyer: %s material may go to the outsourcing provider %s only under a lawyer's supervision (ABA Formal Opinion 08-451; Model Rules 5.1, 5.3); name one on the matter (supervising_lawyer)", [
		matter_id, concat(" and ", sort(labels & confidential_labels)), to.trust_domain,
	]),
} if {
	some to in confidential_providers
	not matter_record.supervising_lawyer
}

# holds_standard holds when party p holds a certification standard: through
# an organisation's certificate record in force covering its site, or, for
# an organisation without records, among its certifications.
holds_standard(p, standard) if {
	not data.data.organisations[p.trust_domain].certificates
	standard in object.get(p, "certifications", [])
} else if {
	some c in data.data.organisations[p.trust_domain].certificates
	c.standard == standard
	certificate_covers(c, p)
	not entry_lapsed({"until": object.get(c, "expires", "9999-12-31")})
}

# certificate_covers holds when certificate c covers party p's site.
certificate_covers(c, p) if not c.sites

else if site_name(p) in c.sites

confidential_denies contains {
	"code": "confidentiality.no_iso27001",
	"message": sprintf("%s cannot receive client-confidential material: its site%s holds no ISO 27001 certificate in force (ABA Formal Opinion 477R)", [to.id, site_label(to)]),
} if {
	"client-confidential" in labels
	not "privileged" in labels # privilege.rego says it
	some [_, to] in recipient_flows # places.rego: the receiver is known
	not holds_standard(to, privilege_certification)
}

confidential_denies contains {
	"code": "confidentiality.no_nda",
	"message": sprintf("%s cannot receive client-confidential material from %s without an NDA: %s", [to.trust_domain, from.trust_domain, why_not(from.trust_domain, to.trust_domain, {"NDA"})]),
} if {
	"client-confidential" in labels
	not "privileged" in labels
	some [from, to] in cross_flows # places.rego: two known organisations
	not "NDA" in in_force_kinds(from.trust_domain, to.trust_domain)
}
