package lexgate

# Matters are the firm's records, not the sender's claims. Every send and
# every delivery names a matter of the registry (data/matters.json), and the
# rules classify the bundle from it:
#
#   labels   = the matter's categories ∪ the labels the sender adds
#   regions  = the matter's data-subject jurisdictions ∪ the sender's
#
# so a sender can add restrictions, never remove them. Labels come from a
# closed vocabulary (data/labels.json): an unknown label is refused with a
# suggestion. Personal data whose data subjects live nowhere the policy
# knows is refused: what the rules cannot classify is never allowed.
#
# The matter also says who may receive its material (its owning
# organisation, its permitted recipients and the recipients added at run
# time with four-eyes approval, input.matter_grants), and the client's
# consent to outsourced and offshore work (ABA Formal Opinion 08-451).

# matter_actions are the actions that move a matter's material.
matter_actions := {"send", "receive"}

# matter_id is the matter the request is about: the bundle's for a send or
# a delivery, the request's for the matter actions ("" when none).
matter_id := object.get(bundle, "matter", "") if {
	action in matter_actions
} else := object.get(request, "matter", "")

# request is input.request of the matter actions ({} when absent).
request := object.get(input, "request", {})

# matter is the registry entry of matter_id; undefined for an unknown one.
matter := data.data.matters[matter_id]

# matter_record is matter, or {} for an unknown one.
matter_record := m if {
	m := matter
} else := {}

# matter_owner is the trust domain of the organisation owning the matter.
matter_owner := object.get(matter_record, "owner", "")

deny contains {
	"code": "matter.missing",
	"message": "every transfer must name the client matter it belongs to (lex send --matter ID); ask your supervising lawyer for the matter number",
} if {
	action in matter_actions
	matter_id == ""
}

deny contains {
	"code": "matter.missing",
	"message": sprintf("the %s request names no matter", [action]),
} if {
	action in request_actions
	matter_id == ""
}

deny contains {
	"code": "matter.unknown",
	"message": sprintf("matter %q is not in the firm's matter registry: check the matter number, or ask records to register it (policies/data/matters.json)", [matter_id]),
} if {
	action in {"send", "receive", "matter_request_recipient", "matter_approve_recipient", "legal_hold_place", "legal_hold_lift"} # matter_actions | request_actions
	matter_id != ""
	not matter
}

# --- Classification -------------------------------------------------------

# sender_labels are the labels the sender declared.
sender_labels := object.get(bundle, "labels", [])

# labels are the effective labels of the bundle: the matter's categories and
# the sender's labels.
labels := {l | some l in sender_labels} | {c | some c in object.get(matter_record, "categories", [])}

# regions are the effective data-subject jurisdictions: the matter's and the
# sender's.
regions := {r | some r in subject_regions} | {r | some r in object.get(matter_record, "data_subject_jurisdictions", [])}

# vocabulary is the closed set of labels (data/labels.json).
# (Read by its path: reading data.data whole would make the gateway build
# every agreement of the data, which it keeps aside.)
vocabulary := v if {
	v := data.data.labels
} else := {}

deny contains {
	"code": "label.unknown",
	"message": sprintf("the label %q is not in the firm's vocabulary%s", [l, hint]),
} if {
	action in matter_actions
	some l in sender_labels
	not vocabulary[l]
	hint := label_hint(l)
}

# label_hint suggests the nearest label of the vocabulary, or lists it.
label_hint(l) := sprintf(": did you mean `%s`?", [s]) if {
	s := suggestion(l)
} else := sprintf(" (%s)", [concat(", ", sort(object.keys(vocabulary)))])

# suggestion is the label of the vocabulary nearest to l: the same but for
# case, else one edit away ("helth" → "health"), else one l starts ("hea"),
# else two edits away (deletions on both sides, the way spelling checkers
# compare: "priviledged" → "privileged").
suggestion(l) := s if {
	s := sort([c | some c, _ in vocabulary; lower(l) == c])[0]
} else := s if {
	d := deletions(lower(l))
	s := sort([c | some c, _ in vocabulary; near1(lower(l), d, c)])[0]
} else := s if {
	count(l) >= 3
	s := sort([c | some c, _ in vocabulary; startswith(c, lower(l))])[0]
} else := s if {
	count(l) > 4 # two edits of a short word leave little of it
	d := deletions2(lower(l))
	s := sort([c | some c, _ in vocabulary; count(d & deletions2(c)) > 0])[0]
}

# near1 holds when c is one edit (insertion, deletion, substitution) from
# a, whose deletions are d.
near1(a, d, c) if c in d # a has one letter more

near1(a, _, c) if a in deletions(c) # a has one letter less

near1(a, d, c) if {
	count(a) == count(c)
	count(d & deletions(c)) > 0 # one letter differs
}

# deletions are the strings s gives with one character removed.
deletions(s) := {concat("", [substring(s, 0, i), substring(s, i + 1, -1)]) | some i in numbers.range(0, count(s) - 1)} if {
	count(s) > 0
} else := set()

# deletions2 are s and the strings it gives with one or two characters
# removed.
deletions2(s) := ({s} | d) | {y | some x in d; some y in deletions(x)} if {
	d := deletions(s)
}

# Personal data with no known data-subject jurisdiction: the export rules
# could not tell which law applies, so it is refused.
deny contains {
	"code": "classification.no_jurisdiction",
	"message": sprintf("matter %s holds personal data (%s) but no data-subject jurisdiction is known: ask records to add the data subjects' countries to the matter, or add them with --region", [
		matter_id, concat(", ", sort(labels & personal_labels)),
	]),
} if {
	action in matter_actions
	matter != false
	personal == true
	count(regions) == 0
}

# --- Permitted recipients -------------------------------------------------

# grants are the recipients added to the matter at run time with four-eyes
# approval (input.matter_grants, from the gateway's store).
grants := object.get(input, "matter_grants", [])

# on_matter holds when party p may hold the matter's material: a member of
# the owning organisation or of a permitted organisation, a permitted
# identity (SPIFFE ID or team prefix), or a recipient granted at run time
# (a trust domain, SPIFFE ID or team prefix). One function whose branches
# are tried in turn: most parties are settled by the first two.
on_matter(p) if p.trust_domain == matter_owner

else if p.trust_domain in matter_record.permitted_recipients.organisations

else if {
	some e in matter_record.permitted_recipients.identities
	wall_matches(e, object.get(p, "id", ""))
} else if {
	some g in grants
	grant_matches(g.recipient, p)
}

# grant_matches holds when a grant's recipient (a SPIFFE ID, a team prefix
# ending in /, spiffe://trust-domain, or a bare trust domain) covers p.
grant_matches(r, p) if r == p.trust_domain

else if wall_matches(r, object.get(p, "id", ""))

# not_permitted are the recipients of the flows (the receiver of a
# delivery) of a known organisation that are not on the matter.
not_permitted := [to |
	some [_, to] in recipient_flows # places.rego: the receiver is known
	not on_matter(to)
]

deny contains {
	"code": "matter.recipient_not_permitted",
	"message": sprintf("%s is not a permitted recipient of matter %s (client %s): ask for it to be added with lex matter request-recipient; another approver must confirm", [
		who(to), matter_id, object.get(matter_record, "client", "?"),
	]),
} if {
	some to in not_permitted
	matter != false
}

deny contains {
	"code": "matter.sender_not_permitted",
	"message": sprintf("%s is not on matter %s (client %s): only its owning organisation and its permitted recipients may send its material", [
		who(source), matter_id, object.get(matter_record, "client", "?"),
	]),
} if {
	input.action == "send"
	matter != false
	source.organisation != false
	not on_matter(source)
}

# --- Client consent to outsourced / offshore work (ABA 08-451) ------------

# consents are the client's consents recorded on the matter.
consents := object.get(matter_record, "client_consents", [])

# owner_jurisdiction is the jurisdiction of the organisation owning the matter.
owner_jurisdiction := data.data.organisations[matter_owner].jurisdiction

# offshore are the recipients of the flows (the receiver of a delivery) that
# are other organisations than the matter's owner, in another jurisdiction
# than the owner's: outsourced, offshore work.
offshore := [to |
	some [_, to] in flows
	offshore_party(to)
]

# offshore_party holds for a party of another organisation than the
# matter's owner, in another jurisdiction than the owner's.
# (false rather than undefined when it does not hold: OPA keeps a
# function's value for the rest of the decision, but works an undefined
# one out again at every call, and offshore and unconsented ask it of
# every recipient.)
default offshore_party(_) := false

offshore_party(to) if {
	to.organisation != false
	to.trust_domain != matter_owner
	to.jurisdiction != owner_jurisdiction
}

# unconsented are the offshore recipients without a consent in force that
# covers them. Most sends have none, and the consent rules below look no
# further.
unconsented := [to |
	some [_, to] in flows
	offshore_party(to)
	not consented(to)
]

# consented holds when a consent in force covers party p.
# (false rather than undefined when it does not hold: OPA keeps a
# function's value for the rest of the decision, but works an undefined
# one out again at every call, and the consent rules and
# confidentiality.rego both ask it.)
default consented(_) := false

consented(p) if {
	some c in consents
	consent_covers(c, p)
	consent_in_force(c)
}

# consent_covers holds when consent c covers party p: its organisation or
# its country.
consent_covers(c, p) if p.trust_domain in c.organisations

else if p.jurisdiction in c.countries

# consent_in_force holds when consent c was given on or before today and
# has not expired (it is in force through its expiry day, UTC).
consent_in_force(c) if {
	c.given <= today
	not consent_lapsed(c)
}

# consent_lapsed holds when today is after consent c's expiry day.
consent_lapsed(c) if c.expires < today

# consent_lapse says why a covering consent is not in force.
consent_lapse(c) := sprintf("consent %s expired on %s", [c.reference, c.expires]) if {
	c.expires < today
} else := sprintf("consent %s only takes effect on %s", [c.reference, c.given])

# consent_reason is the reason an unconsented recipient to is refused:
# no consent on the matter at all, consents covering it that are not in
# force, or consents that do not cover it.
consent_reason(to) := {
	"code": "consent.missing",
	"message": sprintf("%s is an outside provider in %s: the client of matter %s (%s) has not consented to outsourced or offshore work (ABA Formal Opinion 08-451); record the client's informed consent on the matter first", [
		who(to), to.jurisdiction, matter_id, object.get(matter_record, "client", "?"),
	]),
} if {
	count(consents) == 0
} else := {
	"code": "consent.expired",
	"message": sprintf("%s may receive material of matter %s only with the client's consent in force: %s (ABA Formal Opinion 08-451); ask the client to renew it", [
		who(to), matter_id, concat("; ", sort(lapses)),
	]),
} if {
	lapses := [consent_lapse(c) | some c in consents; consent_covers(c, to)]
	count(lapses) > 0
} else := {
	"code": "consent.not_covering",
	"message": sprintf("the client's consent on matter %s (%s) does not cover %s (%s, in %s): ask the client to extend it to that organisation or country (ABA Formal Opinion 08-451)", [
		matter_id, concat(", ", sort([c.reference | some c in consents])), who(to), to.trust_domain, to.jurisdiction,
	]),
}

deny contains r if {
	some to in unconsented
	r := consent_reason(to)
}
