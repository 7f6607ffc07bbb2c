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
