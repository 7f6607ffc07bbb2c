package policy_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/policy"
)

// person is a person of harbor-law.example signed in with lex login.
func person(sub string) policy.Party {
	return policy.Party{ID: "spiffe://harbor-law.example/person/" + sub}
}

// TestSourceRoles: the engine fills input.source.roles, sorted, from the
// people directory and the role lists of data/access.json, whatever the
// caller put there, and only for the source.
func TestSourceRoles(t *testing.T) {
	eng := newDefault(t, nil)
	for _, tc := range []struct {
		name string
		src  policy.Party
		want []string
	}{
		{"directory group maps to two roles", person("dana"), []string{"approver", "attorney"}},
		{"paralegal group", person("pat"), []string{"paralegal"}},
		{"records group", person("rita"), []string{"records_manager"}},
		{"access.json lists by ID", alice, []string{"approver", "records_manager"}},
		{"access.json team prefix", policy.Party{ID: "spiffe://harbor-law.example/partner/x"}, []string{"approver"}},
		{"not in the directory", person("nora"), nil},
		{"claimed roles are replaced", policy.Party{ID: person("pat").ID, Roles: []string{"security_admin"}}, []string{"paralegal"}},
		{"same subject, other organisation", policy.Party{ID: "spiffe://manila-lpo.example/person/dana"}, nil},
		{"subject not under /person/", policy.Party{ID: "spiffe://harbor-law.example/team/dana"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := eng.Enrich(policy.Input{Version: 1, Action: "send", Time: june, Source: tc.src, Destinations: []policy.Party{person("dana")}})
			if !slices.Equal(in.Source.Roles, tc.want) {
				t.Errorf("roles = %v, want %v", in.Source.Roles, tc.want)
			}
			if in.Destinations[0].Roles != nil {
				t.Errorf("destination roles = %v, want none", in.Destinations[0].Roles)
			}
		})
	}
}

// TestRolesDecide: the roles filled by the engine decide who approves a
// recipient and who places a legal hold on a matter of the shipped
// registry.
func TestRolesDecide(t *testing.T) {
	eng := newDefault(t, nil)
	approve := &policy.Request{Matter: "HL-2026-0042", Recipient: "bogota-lpo.example", RequestID: "R1", RequestedBy: alice.ID}
	hold := &policy.Request{Matter: "HL-2026-0042", Reason: "litigation"}
	for _, tc := range []struct {
		action string
		src    policy.Party
		req    *policy.Request
		want   string // reason code, "" for allowed
	}{
		{"matter_approve_recipient", person("dana"), approve, ""},
		{"matter_approve_recipient", person("pat"), approve, "role.not_approver"},
		{"matter_approve_recipient", person("nora"), approve, "role.not_approver"},
		{"legal_hold_place", person("rita"), hold, ""},
		{"legal_hold_place", person("sam"), hold, ""},
		{"legal_hold_place", person("pat"), hold, "role.not_records_manager"},
		{"legal_hold_place", person("dana"), hold, "role.not_records_manager"},
	} {
		t.Run(fmt.Sprintf("%s by %s", tc.action, tc.src.ID), func(t *testing.T) {
			d, err := eng.Decide(t.Context(), policy.Input{Version: 1, Action: tc.action, Time: june, Source: tc.src, Request: tc.req})
			if err != nil {
				t.Fatal(err)
			}
			var codes []string
			for _, r := range d.Reasons {
				codes = append(codes, r.Code)
			}
			if tc.want == "" && !d.Allow || tc.want != "" && !slices.Equal(codes, []string{tc.want}) {
				t.Errorf("allow=%v reasons=%v, want %q", d.Allow, d.Reasons, tc.want)
			}
		})
	}
}

// TestPeopleDirectoryReloads: a change to data/people.json takes effect on
// reload, like every other data file.
func TestPeopleDirectoryReloads(t *testing.T) {
	dir := t.TempDir()
	orgs := "{\"organisations\": {\"a.test\": {\"name\": \"A\", \"jurisdiction\": \"DE\"}}}\n"
	groups := `{"roles_from_groups": {"a.test": {"partners": ["approver"], "staff": ["paralegal"]}}}`
	people := func(group string) string {
		return fmt.Sprintf(`{"people": {"a.test": {"dana": {"groups": [%q]}}}}`, group)
	}
	writeSet(t, dir, map[string]string{"p.rego": allowAll, "data/organisations.json": orgs, "data/groups.json": groups, "data/people.json": people("staff")})
	eng, err := policy.New(t.Context(), policy.Config{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	in := policy.Input{Version: 1, Action: "send", Time: june, Source: policy.Party{ID: "spiffe://a.test/person/dana"}}
	if got := eng.Enrich(in).Source.Roles; !slices.Equal(got, []string{"paralegal"}) {
		t.Fatalf("roles = %v, want [paralegal]", got)
	}
	writeSet(t, dir, map[string]string{"p.rego": allowAll, "data/organisations.json": orgs, "data/groups.json": groups, "data/people.json": people("partners")})
	if err := eng.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := eng.Enrich(in).Source.Roles; !slices.Equal(got, []string{"approver"}) {
		t.Fatalf("after reload roles = %v, want [approver]", got)
	}
	// A bad directory is refused and the last good one stays.
	writeSet(t, dir, map[string]string{"p.rego": allowAll, "data/organisations.json": orgs, "data/groups.json": `{"roles_from_groups": {"a.test": {"partners": ["partner"]}}}`, "data/people.json": people("partners")})
	if err := eng.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), filepath.Join("data", "groups.json")) {
		t.Fatalf("reload of a bad directory: %v, want an error naming data/groups.json", err)
	}
	if got := eng.Enrich(in).Source.Roles; !slices.Equal(got, []string{"approver"}) {
		t.Fatalf("after a refused reload roles = %v, want [approver]", got)
	}
}

// TestCheckPeopleDirectory: a bad people directory or group mapping is
// refused, each problem at FILE:LINE of the entry it is about.
func TestCheckPeopleDirectory(t *testing.T) {
	people := `{
  "people": {
    "a.test": {
      "spiffe://b.test/person/x": {"groups": ["staff"]},
      "team/dana": {"groups": ["staff"]},
      "ok": {"groups": [" staff"]}
    },
    "nowhere.test": {
      "y": {"groups": []}
    }
  },
  "roles_from_groups": {
    "a.test": {
      "staff": ["paralegal"],
      "partners": ["approver", "partner"]
    },
    "gone.test": {}
  }
}
`
	fsys := mapFS(map[string]string{
		"p.rego":                  allowAll,
		"data/organisations.json": "{\"organisations\": {\n  \"a.test\": {\"name\": \"A\", \"jurisdiction\": \"DE\"},\n  \"b.test\": {\"name\": \"B\", \"jurisdiction\": \"DE\"}\n}}\n",
		"data/people.json":        people,
	})
	var got []string
	for _, err := range policy.Check(t.Context(), fsys) {
		var pe *policy.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%T %v", err, err)
		}
		got = append(got, fmt.Sprintf("%s:%d %s", pe.File, pe.Line, pe.Message))
	}
	for _, want := range []string{
		`data/people.json:4 people["a.test"]["spiffe://b.test/person/x"]: a SPIFFE ID in the directory of a.test must be spiffe://a.test/<path>`,
		`data/people.json:5 people["a.test"]["team/dana"]: a person subject must be non-empty, without / or spaces`,
		`data/people.json:6 people["a.test"]["ok"]: group " staff" is empty or has spaces around it`,
		`data/people.json:8 people["nowhere.test"]: "nowhere.test" is not in organisations`,
		`data/people.json:15 roles_from_groups["a.test"]["partners"]: role "partner" is not one of approver, attorney, paralegal, records_manager, security_admin`,
		`data/people.json:17 roles_from_groups["gone.test"]: "gone.test" is not in organisations`,
	} {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, want) }) {
			t.Errorf("no error %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if len(got) != 6 {
		t.Errorf("%d errors, want 6:\n%s", len(got), strings.Join(got, "\n"))
	}
}
