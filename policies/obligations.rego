package lexgate

# Obligations the gateway stores with an allowed transfer and enforces on
# every delivery: how long it is kept (retention_days, expires_at) and how
# often it may be downloaded (max_downloads). The strictest of the
# recipients' organisations and the matter wins.
#
# retention_seconds (an organisation's or a matter's, optional) is for tests
# and demonstrations: when some party or the matter sets it, the shortest
# one wins over days, expires_at is input.time + that many seconds, and
# retention_days is that time rounded up to whole days.

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
# organisations (of the source's when there is none) and of the matter; with
# retention_seconds, those seconds in whole days, rounded up.
retention_days := ceil(retention_seconds / 86400) if {
	retention_seconds != false
} else := min({object.get(o, "retention_days", default_retention_days) | some o in obligation_orgs} | {v |
	v := matter_record.retention_days
})

# obligation_orgs are the organisations (as in data.data) of the parties
# setting the obligations (settings_of); {} for an unknown one.
obligation_orgs := [object.get(data.data.organisations, object.get(p, "trust_domain", ""), {}) | some p in settings_of]

# retention_seconds is the shortest retention_seconds of the organisations
# setting the obligations and of the matter; undefined when none sets it.
retention_seconds := min(secs) if {
	secs := {v | some o in obligation_orgs; v := o.retention_seconds} | {v | v := matter_record.retention_seconds}
	count(secs) > 0
}

# max_downloads is the smallest limit of the counterparties' organisations
# (of the source's when there is none) and of the matter.
max_downloads := min({object.get(o, "max_downloads", default_max_downloads) | some o in obligation_orgs} | {v |
	v := matter_record.max_downloads
})

# expires_at is when the gateway deletes the transfer: input.time +
# retention (seconds when set, else days), RFC 3339.
expires_at := t if {
	t := time.format(now + (retention_seconds * 1000000000))
} else := t if {
	t := time.format(time.add_date(now, 0, 0, retention_days))
} else := ""

# settings_of are the parties whose organisations set the obligations. An
# organisation without the setting gets the default; a setting that is not
# a number is ignored (the gateway refuses such data when it loads it).
settings_of := counterparties if {
	count(counterparties) > 0
} else := [source]
