package policy

import (
	"slices"
	"strings"
)

// Role names, the closed set a person may hold. The policy library reads
// them from input.source.roles: only approvers approve a recipient for a
// matter, only records managers (and security administrators) place and
// lift legal holds, only security administrators revoke, unrevoke,
// quarantine and release.
const (
	RoleParalegal      = "paralegal"
	RoleAttorney       = "attorney"
	RoleApprover       = "approver"
	RoleRecordsManager = "records_manager"
	RoleSecurityAdmin  = "security_admin"
)

// knownRoles is the closed set of roles.
var knownRoles = []string{RoleApprover, RoleAttorney, RoleParalegal, RoleRecordsManager, RoleSecurityAdmin}

// Person is an entry of the people directory (data/people.json), which
// the firm syncs from its identity provider: the groups the person is a
// member of there.
type Person struct {
	// Groups are the identity provider's group names of the person.
	Groups []string `json:"groups"`
}

// checkPeople checks the people directory (people: organisation → SPIFFE
// ID or person subject → person) and the group mapping (roles_from_groups:
// organisation → group → roles): organisations must be known, SPIFFE IDs
// must belong to their organisation, subjects must be bare, roles must be
// of the closed set, and every group a person is in should be mapped
// (unmapped groups are allowed: a directory holds groups the policy does
// not care about).
func (f *facts) checkPeople() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, dataError(format, args...)) }
	for _, td := range sortedKeys(f.People) {
		if _, ok := f.Organisations[td]; !ok {
			bad("people[%q]: %q is not in organisations: add the organisation or remove its people", td, td)
		}
		for _, who := range sortedKeys(f.People[td]) {
			switch {
			case strings.HasPrefix(who, "spiffe://"):
				if !strings.HasPrefix(who, "spiffe://"+td+"/") || len(who) == len("spiffe://"+td+"/") {
					bad("people[%q][%q]: a SPIFFE ID in the directory of %s must be spiffe://%s/<path>", td, who, td, td)
				}
			case who == "" || strings.ContainsAny(who, "/ \t\n") || strings.TrimSpace(who) != who:
				bad("people[%q][%q]: a person subject must be non-empty, without / or spaces (it is the <sub> of spiffe://%s/person/<sub>), or give a full SPIFFE ID", td, who, td)
			}
			for _, g := range f.People[td][who].Groups {
				if g == "" || strings.TrimSpace(g) != g {
					bad("people[%q][%q]: group %q is empty or has spaces around it", td, who, g)
				}
			}
		}
	}
	for _, td := range sortedKeys(f.RolesFromGroups) {
		if _, ok := f.Organisations[td]; !ok {
			bad("roles_from_groups[%q]: %q is not in organisations", td, td)
		}
		for _, g := range sortedKeys(f.RolesFromGroups[td]) {
			if g == "" || strings.TrimSpace(g) != g {
				bad("roles_from_groups[%q][%q]: the group name is empty or has spaces around it", td, g)
			}
			for _, r := range f.RolesFromGroups[td][g] {
				if !slices.Contains(knownRoles, r) {
					bad("roles_from_groups[%q][%q]: role %q is not one of %s", td, g, r, strings.Join(knownRoles, ", "))
				}
			}
		}
	}
	return errs
}

// rolesOf returns the roles of the party p, sorted and without duplicates:
// those its groups in the people directory map to under its
// organisation's roles_from_groups (the directory names p by its SPIFFE
// ID, or a person by the <sub> of spiffe://<org>/person/<sub>), and those
// whose list in data/access.json (roles) holds p's SPIFFE ID or a team
// prefix of it. Nil when p holds none.
func (f *facts) rolesOf(p Party) []string {
	var roles []string
	for _, r := range sortedKeys(f.Roles) {
		for _, e := range f.Roles[r] {
			if e == p.ID || strings.HasSuffix(e, "/") && strings.HasPrefix(p.ID, e) {
				roles = append(roles, r)
				break
			}
		}
	}
	dir := f.People[p.TrustDomain]
	if dir != nil && p.TrustDomain != "" {
		person, ok := dir[p.ID]
		if sub, isPerson := strings.CutPrefix(p.Path, "/person/"); !ok && isPerson && sub != "" {
			person, ok = dir[sub]
		}
		if ok {
			groups := f.RolesFromGroups[p.TrustDomain]
			for _, g := range person.Groups {
				roles = append(roles, groups[g]...)
			}
		}
	}
	if len(roles) == 0 {
		return nil
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}
