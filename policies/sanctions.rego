package lexgate

# Sanctions: nothing moves to or from a jurisdiction under embargo
# (data.data.jurisdictions.embargoed, with the date each took effect),
# whatever the action.

deny contains {
	"code": "sanctions.embargoed",
	"message": sprintf("%s is in %s, which is under embargo: lexgate refuses every action to or from it", [who(p), p.jurisdiction]),
} if {
	some p in parties
	since := data.data.jurisdictions.embargoed[p.jurisdiction] # embargoed(p.jurisdiction), places.rego; first: it rules out most parties at once
	p.organisation
	since <= today
}
