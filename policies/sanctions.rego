package lexgate

# Sanctions: nothing moves to or from a jurisdiction under embargo
# (data.data.jurisdictions.embargoed, with the date each took effect),
# whatever the action.

deny contains reason(
	"sanctions.embargoed",
	sprintf("%s is in %s, which is under embargo: lexgate refuses every action to or from it", [who(p), jurisdiction(p)]),
) if {
	some p in array.concat([source], counterparties)
	known(p)
	embargoed(jurisdiction(p))
}
