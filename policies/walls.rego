package lexgate

# Ethical walls: for each matter, data.data.ethical_walls lists who must
# never receive its material. An entry is a SPIFFE ID
# ("spiffe://td/path"), a team ("spiffe://td/team/" — every ID under the
# prefix), or a whole organisation ("spiffe://td"). Checked on send (each
# recipient) and on receive (the receiver).

# walled_off lists the wall entries of a matter that match party p.
walled_off(matter, p) := [e |
	some e in object.get(data.data.ethical_walls, matter, [])
	wall_matches(e, object.get(p, "id", ""))
]

# wall_matches holds when a wall entry covers a SPIFFE ID.
wall_matches(e, id) if e == id

wall_matches(e, id) if {
	endswith(e, "/")
	startswith(id, e)
}

wall_matches(e, id) if {
	not contains(trim_prefix(e, "spiffe://"), "/")
	startswith(id, concat("", [e, "/"]))
}

deny contains {
	"code": "wall.blocked",
	"message": sprintf("%s is behind an ethical wall for matter %s (%s) and must never receive its material", [to.id, matter, concat(", ", entries)]),
} if {
	matter := input.bundle.matter
	object.get(data.data.ethical_walls, matter, false) # not data.data.ethical_walls[matter]: see README.md, Input
	matter != ""
	some [_, to] in flows
	entries := walled_off(matter, to)
	count(entries) > 0
}
