package lexgate

# Obligations the gateway enforces on an allowed transfer.

# default_retention_days applies to organisations without retention_days.
default_retention_days := 30

# default_max_downloads applies to organisations without max_downloads.
default_max_downloads := 5

obligations := {
	"retention_days": retention_days,
	"max_downloads": max_downloads,
	"expires_at": expires_at,
}

# retention_days is the shortest retention of the counterparties'
# organisations (of the source's when there is none).
retention_days := min(org_settings("retention_days", default_retention_days))

# max_downloads is the smallest limit of the counterparties' organisations
# (of the source's when there is none).
max_downloads := min(org_settings("max_downloads", default_max_downloads))

# expires_at is when the gateway deletes the transfer: input.time + retention.
expires_at := t if {
	t := time.format(time.add_date(now, 0, 0, retention_days))
} else := ""

# org_settings are the values of a numeric setting (key) of the
# organisations of the counterparties, or of the source when there is none:
# each one's own, or fallback for those without one.
org_settings(key, fallback) := {v |
	some p in settings_of
	v := object.get(data.data.organisations, [object.get(p, "trust_domain", ""), key], fallback)
	is_number(v)
} | {fallback |
	some p in settings_of
	not is_number(object.get(data.data.organisations, [object.get(p, "trust_domain", ""), key], fallback))
}

# settings_of are the parties whose organisations set the obligations.
settings_of := counterparties if {
	count(counterparties) > 0
} else := [source]
