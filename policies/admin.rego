package lexgate

# Administration: the "admin" action (and asking the gateway to explain a
# decision for an organisation other than one's own) is for the identities
# listed in data.data.admins only. "explain" — asking what the policy would
# decide for one's own organisation — is open to every known organisation;
# the gateway sends it as action "explain", and as "admin" otherwise.

# admin holds when the source is a policy administrator.
# (data.data.admins is read by its path: reading data.data whole would make
# the gateway build every agreement of the data, which it keeps aside.)
admin if source.id in data.data.admins

deny contains {
	"code": "admin.not_admin",
	"message": sprintf("%s is not a policy administrator: ask your security team to add it to the admins in policies/data", [who(source)]),
} if {
	input.action == "admin"
	not admin
}

# Revoking a transfer or identity, undoing it, and quarantining or
# releasing a transfer (input.admin.op, sent by the admin plane with action
# "admin") are for security administrators only (role security_admin in
# input.source.roles or data.data.roles), on top of being an administrator.
security_ops := {"revoke", "unrevoke", "quarantine", "release"}

deny contains {
	"code": "role.not_security_admin",
	"message": sprintf("%s may not %s: only security administrators may (a group mapped to security_admin in policies/data roles_from_groups, or roles.security_admin)", [who(source), input.admin.op]),
} if {
	input.action == "admin"
	input.admin.op in security_ops
	not has_role("security_admin")
}
