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
retention_days := min({v |
	some p in settings_of
	v := object.get(data.data.organisations, [object.get(p, "trust_domain", ""), "retention_days"], default_retention_days)
	is_number(v)
})

# max_downloads is the smallest limit of the counterparties' organisations
# (of the source's when there is none).
max_downloads := min({v |
	some p in settings_of
	v := object.get(data.data.organisations, [object.get(p, "trust_domain", ""), "max_downloads"], default_max_downloads)
	is_number(v)
})

# expires_at is when the gateway deletes the transfer: input.time + retention.
expires_at := t if {
	t := time.format(time.add_date(now, 0, 0, retention_days))
} else := ""

# settings_of are the parties whose organisations set the obligations. An
# organisation without the setting gets the default; a setting that is not
# a number is ignored (the gateway refuses such data when it loads it).
settings_of := counterparties if {
	count(counterparties) > 0
} else := [source]
