package lexgate

# Privilege: material labelled "privileged" may only go to a site holding
# ISO 27001 (the organisation's or the site's certification) and under an
# NDA in force with the sender's organisation. Within one organisation no
# NDA is needed, but the receiving site still needs ISO 27001.

# privilege_certification is what a site needs to hold privileged material.
privilege_certification := "ISO 27001"

deny contains {
	"code": "privilege.no_iso27001",
	"message": sprintf("%s cannot receive privileged material: its site%s does not hold ISO 27001", [to.id, site_label(to)]),
} if {
	"privileged" in labels
	some [_, to] in recipient_flows # places.rego: the receiver is known
	not holds_standard(to, privilege_certification) # confidentiality.rego: per-site certificates with expiry
}

deny contains {
	"code": "privilege.no_nda",
	"message": sprintf("%s cannot receive privileged material from %s without an NDA: %s", [to.trust_domain, from.trust_domain, why_not(from.trust_domain, to.trust_domain, {"NDA"})]),
} if {
	"privileged" in labels
	some [from, to] in cross_flows # places.rego: two known organisations
	not "NDA" in in_force_kinds(from.trust_domain, to.trust_domain)
}

# site_label is " (NAME)" for a party with a site, "" otherwise.
site_label(p) := sprintf(" (%s)", [site_name(p)]) if site_name(p) != ""

else := ""
