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
retention_days := min({org_setting(p, "retention_days", default_retention_days) | some p in counterparties}) if {
	count(counterparties) > 0
} else := v if {
	v := org_setting(source, "retention_days", default_retention_days)
} else := default_retention_days

# max_downloads is the smallest limit of the counterparties' organisations.
max_downloads := min({org_setting(p, "max_downloads", default_max_downloads) | some p in counterparties}) if {
	count(counterparties) > 0
} else := v if {
	v := org_setting(source, "max_downloads", default_max_downloads)
} else := default_max_downloads

# expires_at is when the gateway deletes the transfer: input.time + retention.
expires_at := t if {
	t := time.format(time.add_date(now, 0, 0, retention_days))
} else := ""

# org_setting reads a number from a party's organisation, or the default.
org_setting(party, key, fallback) := v if {
	v := org(party)[key]
	is_number(v)
} else := fallback
