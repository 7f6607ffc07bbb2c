package lexgate

# Limits: an organisation may cap the bundles it sends or receives
# (max_bundle_bytes, max_files), and a site may only move material within
# its business hours (business_hours: time_zone, days, from, to).

deny contains {
	"code": "limits.size",
	"message": sprintf("the bundle is %d bytes, over the %d-byte limit of %s", [object.get(bundle, "size", 0), limit, p.trust_domain]),
} if {
	input.action == "send"
	some p in parties
	limit := p.organisation.max_bundle_bytes
	object.get(bundle, "size", 0) > limit
}

deny contains {
	"code": "limits.file_count",
	"message": sprintf("the bundle has %d files, over the limit of %d files of %s", [object.get(bundle, "file_count", 0), limit, p.trust_domain]),
} if {
	input.action == "send"
	some p in parties
	limit := p.organisation.max_files
	object.get(bundle, "file_count", 0) > limit
}

deny contains {
	"code": "hours.outside",
	"message": sprintf("%s can only %s material during its business hours (%s, %s-%s %s); it is %s there", [
		site_name(source), action, concat(" ", h.days), h.from, h.to, h.time_zone, local_time(h.time_zone),
	]),
} if {
	h := source.site.business_hours
	action in {"send", "receive"}
	not within_hours(h)
}

# within_hours holds when input.time is within business hours h: on one of
# h.days (Mon, Tue...), from h.from (inclusive) to h.to (exclusive), HH:MM
# in h.time_zone (an IANA name such as "Asia/Manila").
within_hours(h) if {
	day := substring(time.weekday([now, h.time_zone]), 0, 3)
	day in h.days
	[hh, mm, _] := time.clock([now, h.time_zone])
	t := (hh * 60) + mm
	minutes(h.from) <= t
	t < minutes(h.to)
}

# minutes turns "HH:MM" into minutes after midnight.
minutes(s) := (to_number(parts[0]) * 60) + to_number(parts[1]) if {
	parts := split(s, ":")
}

# local_time is input.time as "Mon 21:05" in the time zone tz.
local_time(tz) := sprintf("%s %02d:%02d", [substring(time.weekday([now, tz]), 0, 3), hh, mm]) if {
	[hh, mm, _] := time.clock([now, tz])
}
