package cli

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
)

// The incident report (issue 16): everything the caller's organisation may
// see of an identity, a matter or an organisation in a time window, grouped
// for a breach assessment, with the notification deadlines that apply from
// the discovery time. buildIncident is a pure function of verified audit
// entries, policy facts and the deadline rules, so it is tested with a
// golden file.

//go:embed incident_deadlines.json
var deadlineRulesJSON []byte

// deadlineRule is one notification duty, kept as data (incident_deadlines.json).
type deadlineRule struct {
	ID            string   `json:"id"`
	Law           string   `json:"law"`
	Notify        string   `json:"notify"`
	Hours         int      `json:"hours"`
	Jurisdictions []string `json:"jurisdictions"`
	Categories    []string `json:"categories"`
	Source        string   `json:"source"`
}

func loadDeadlineRules(b []byte) ([]deadlineRule, error) {
	var doc struct {
		Checked string         `json:"checked"`
		Note    string         `json:"note"`
		Rules   []deadlineRule `json:"rules"`
	}
	if err := strictJSON(b, &doc); err != nil {
		return nil, fmt.Errorf("deadline rules: %w", err)
	}
	for _, r := range doc.Rules {
		if r.ID == "" || r.Hours <= 0 || r.Law == "" || r.Source == "" {
			return nil, fmt.Errorf("deadline rule %q: id, law, hours and source are required", r.ID)
		}
	}
	return doc.Rules, nil
}

// incidentScope is what the report is about.
type incidentScope struct {
	Identity   string    `json:"identity,omitempty"`
	Matter     string    `json:"matter,omitempty"`
	Org        string    `json:"org,omitempty"`
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
	Discovered time.Time `json:"discovered"`
	Viewer     string    `json:"viewer"` // the organisation whose side the report shows
}

// matches reports whether the SPIFFE ID id is the scope's identity or of its organisation.
func (s incidentScope) matches(id string) bool {
	switch {
	case s.Identity != "":
		return id == s.Identity
	case s.Org != "":
		return trustDomainOf(id) == s.Org
	}
	return id != ""
}

func trustDomainOf(id string) string {
	td, _, _ := strings.Cut(strings.TrimPrefix(id, "spiffe://"), "/")
	return td
}

// incidentFacts are what the policy data says about organisations and matters.
type incidentFacts struct {
	Orgs    map[string]orgFacts    // trust domain → facts
	Matters map[string]matterFacts // matter → facts
}

type orgFacts struct {
	Name         string `json:"name"`
	Jurisdiction string `json:"jurisdiction"`
}

type matterFacts struct {
	Client     string   `json:"client"`
	Categories []string `json:"categories"`
}

// incidentEntry is a verified audit entry the caller may see.
type incidentEntry struct {
	Index   uint64
	Event   audit.Event
	Receipt *audit.Receipt
}

// IncidentReport is the report's JSON form.
type IncidentReport struct {
	Scope            incidentScope      `json:"scope"`
	Totals           incidentTotals     `json:"totals"`
	ByClient         []incidentGroup    `json:"by_client"`
	ByMatter         []incidentGroup    `json:"by_matter"`
	ByRecipientOrg   []incidentGroup    `json:"by_recipient_org"`
	ByCategory       []incidentGroup    `json:"by_category"`
	Transfers        []incidentTransfer `json:"transfers"`
	KeyRegistrations []incidentKeys     `json:"key_registrations"`
	Refusals         []incidentRefusal  `json:"refusals"`
	Deadlines        []incidentDeadline `json:"deadlines"`
}

type incidentTotals struct {
	Sent             int `json:"sent"`
	Received         int `json:"received"`
	Downloads        int `json:"downloads"`
	Acknowledged     int `json:"acknowledged"`
	KeyRegistrations int `json:"key_registrations"`
	Refused          int `json:"refused"`
}

type incidentGroup struct {
	Key       string `json:"key"`
	Country   string `json:"country,omitempty"`
	Transfers int    `json:"transfers"`
	Downloads int    `json:"downloads"`
	Acks      int    `json:"acks"`
	Bytes     int64  `json:"bytes"`
}

type incidentTransfer struct {
	ID         string               `json:"id"`
	Sender     string               `json:"sender"`
	Recipients []incidentRecipient  `json:"recipients"`
	Matter     string               `json:"matter"`
	Client     string               `json:"client,omitempty"`
	Categories []string             `json:"categories"`
	Created    time.Time            `json:"created"`
	Size       int64                `json:"ciphertext_size"`
	Downloads  []incidentDownload   `json:"downloads"`
	Acks       []incidentDownload   `json:"acks"`
	CanDecrypt []incidentKeyHolding `json:"can_decrypt"`
	Destroyed  time.Time            `json:"destroyed,omitzero"`
	Receipt    *audit.Receipt       `json:"receipt,omitempty"`
}

type incidentRecipient struct {
	ID      string `json:"id"`
	Org     string `json:"org"`
	Country string `json:"country,omitempty"`
}

type incidentDownload struct {
	By   string    `json:"by"`
	Time time.Time `json:"time"`
}

// incidentKeyHolding is an age recipient that can decrypt a transfer: the
// key its recipient had registered when the transfer was created.
type incidentKeyHolding struct {
	Recipient   string `json:"recipient"`
	Fingerprint string `json:"fingerprint"` // SHA-256 of the age recipient string, first 16 hex digits
	Registered  uint64 `json:"registration_index"`
}

type incidentKeys struct {
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	Index        uint64    `json:"index"`
	Fingerprints []string  `json:"fingerprints"`
}

type incidentRefusal struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Matter  string    `json:"matter,omitempty"`
	Reasons []string  `json:"reasons"`
	Index   uint64    `json:"index"`
}

type incidentDeadline struct {
	Rule    string    `json:"rule"`
	Law     string    `json:"law"`
	Notify  string    `json:"notify"`
	Due     time.Time `json:"due"`
	Hours   int       `json:"hours"`
	Because string    `json:"because"`
	Source  string    `json:"source"`
}

func keyFingerprint(recipient string) string {
	s := sha256.Sum256([]byte(recipient))
	return "SHA256:" + hex.EncodeToString(s[:8])
}

// buildIncident makes the report from the entries the caller may see, in
// index order (key registrations of every identity included: they are public).
func buildIncident(scope incidentScope, facts incidentFacts, rules []deadlineRule, entries []incidentEntry) IncidentReport {
	rep := IncidentReport{Scope: scope}
	inWindow := func(t time.Time) bool {
		return !t.Before(scope.Since) && (scope.Until.IsZero() || t.Before(scope.Until))
	}
	type keyAt struct {
		index uint64
		keys  []string
	}
	keys := map[string][]keyAt{} // identity → its registrations, in order
	transfers := map[string]*incidentTransfer{}
	var order []string
	for _, en := range entries {
		ev := en.Event
		if ev.Kind == audit.KindKeyRegistration {
			keys[ev.Actor] = append(keys[ev.Actor], keyAt{en.Index, ev.Keys})
			if inWindow(ev.Time) && scope.Matter == "" && scope.matches(ev.Actor) {
				fps := make([]string, len(ev.Keys))
				for i, k := range ev.Keys {
					fps[i] = keyFingerprint(k)
				}
				rep.KeyRegistrations = append(rep.KeyRegistrations, incidentKeys{ID: ev.Actor, Time: ev.Time.UTC(), Index: en.Index, Fingerprints: fps})
			}
			continue
		}
		if ev.Decision != nil && !ev.Decision.Allow {
			if inWindow(ev.Time) && (scope.Matter == "" && scope.matches(ev.Actor) || scope.Matter != "" && ev.Matter == scope.Matter) {
				rep.Refusals = append(rep.Refusals, incidentRefusal{Time: ev.Time.UTC(), Actor: ev.Actor, Action: ev.Action,
					Matter: ev.Matter, Reasons: ev.Decision.Reasons, Index: en.Index})
			}
			continue
		}
		if ev.Transfer == "" {
			continue
		}
		t := transfers[ev.Transfer]
		if t == nil && ev.Kind != audit.KindTransferCreated {
			continue // its creation is outside what the caller sees
		}
		switch ev.Kind {
		case audit.KindTransferCreated:
			t = &incidentTransfer{ID: ev.Transfer, Sender: ev.Actor, Matter: ev.Matter, Created: ev.Time.UTC(),
				Downloads: []incidentDownload{}, Acks: []incidentDownload{}, CanDecrypt: []incidentKeyHolding{}}
			m := facts.Matters[ev.Matter]
			t.Client = m.Client
			t.Categories = categories(m.Categories, ev.Labels)
			for _, r := range ev.Recipients {
				td := trustDomainOf(r)
				t.Recipients = append(t.Recipients, incidentRecipient{ID: r, Org: td, Country: facts.Orgs[td].Jurisdiction})
				if regs := keys[r]; len(regs) > 0 {
					last := regs[len(regs)-1]
					for _, k := range last.keys {
						t.CanDecrypt = append(t.CanDecrypt, incidentKeyHolding{Recipient: r, Fingerprint: keyFingerprint(k), Registered: last.index})
					}
				}
			}
			transfers[ev.Transfer] = t
			order = append(order, ev.Transfer)
		case audit.KindUploadComplete:
			t.Size, t.Receipt = ev.CiphertextSize, en.Receipt
		case audit.KindDelivery:
			if inWindow(ev.Time) {
				t.Downloads = append(t.Downloads, incidentDownload{By: ev.Actor, Time: ev.Time.UTC()})
			}
		case audit.KindAck:
			if inWindow(ev.Time) {
				t.Acks = append(t.Acks, incidentDownload{By: ev.Actor, Time: ev.Time.UTC()})
			}
		case audit.KindDestruction:
			t.Destroyed = ev.Time.UTC()
		}
	}
	rep.Transfers = []incidentTransfer{}
	for _, id := range order {
		t := transfers[id]
		if !transferInScope(scope, t, inWindow) {
			continue
		}
		rep.Transfers = append(rep.Transfers, *t)
	}
	rep.tally(scope, facts)
	rep.Deadlines = deadlines(rules, scope, facts, rep)
	if rep.KeyRegistrations == nil {
		rep.KeyRegistrations = []incidentKeys{}
	}
	if rep.Refusals == nil {
		rep.Refusals = []incidentRefusal{}
	}
	return rep
}

// transferInScope: the transfer is of the scope (its matter, or a party
// matching the identity or organisation) and something happened to it in
// the window.
func transferInScope(scope incidentScope, t *incidentTransfer, inWindow func(time.Time) bool) bool {
	if scope.Matter != "" && t.Matter != scope.Matter {
		return false
	}
	if scope.Matter == "" {
		party := scope.matches(t.Sender)
		for _, r := range t.Recipients {
			party = party || scope.matches(r.ID)
		}
		if !party {
			return false
		}
	}
	active := inWindow(t.Created)
	for _, d := range append(slices.Clone(t.Downloads), t.Acks...) {
		active = active || inWindow(d.Time)
	}
	return active
}

func categories(matter, labels []string) []string {
	out := slices.Clone(matter)
	for _, l := range labels {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// tally counts the totals and the groups.
func (rep *IncidentReport) tally(scope incidentScope, facts incidentFacts) {
	groups := map[string]map[string]*incidentGroup{"client": {}, "matter": {}, "org": {}, "category": {}}
	add := func(kind, key, country string, t incidentTransfer) {
		g := groups[kind][key]
		if g == nil {
			g = &incidentGroup{Key: key, Country: country}
			groups[kind][key] = g
		}
		g.Transfers++
		g.Downloads += len(t.Downloads)
		g.Acks += len(t.Acks)
		g.Bytes += t.Size
	}
	for _, t := range rep.Transfers {
		if scope.Matter != "" || scope.matches(t.Sender) {
			rep.Totals.Sent++
		}
		received := false
		for _, r := range t.Recipients {
			received = received || scope.Matter == "" && scope.matches(r.ID)
		}
		if received {
			rep.Totals.Received++
		}
		rep.Totals.Downloads += len(t.Downloads)
		rep.Totals.Acknowledged += len(t.Acks)
		client := t.Client
		if client == "" {
			client = "(unknown client)"
		}
		add("client", client, "", t)
		add("matter", t.Matter, "", t)
		orgs := map[string]bool{}
		for _, r := range t.Recipients {
			if !orgs[r.Org] {
				orgs[r.Org] = true
				add("org", r.Org, facts.Orgs[r.Org].Jurisdiction, t)
			}
		}
		cats := t.Categories
		if len(cats) == 0 {
			cats = []string{"(unclassified)"}
		}
		for _, c := range cats {
			add("category", c, "", t)
		}
	}
	rep.Totals.KeyRegistrations = len(rep.KeyRegistrations)
	rep.Totals.Refused = len(rep.Refusals)
	sorted := func(m map[string]*incidentGroup) []incidentGroup {
		out := []incidentGroup{}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, *m[k])
		}
		return out
	}
	rep.ByClient, rep.ByMatter = sorted(groups["client"]), sorted(groups["matter"])
	rep.ByRecipientOrg, rep.ByCategory = sorted(groups["org"]), sorted(groups["category"])
}

// deadlines are the rules whose jurisdictions and categories the transfers
// in scope touch, due from the discovery time, earliest first.
func deadlines(rules []deadlineRule, scope incidentScope, facts incidentFacts, rep IncidentReport) []incidentDeadline {
	juris := map[string]bool{}
	cats := map[string]bool{}
	for _, t := range rep.Transfers {
		if j := facts.Orgs[trustDomainOf(t.Sender)].Jurisdiction; j != "" {
			juris[j] = true
		}
		for _, r := range t.Recipients {
			if r.Country != "" {
				juris[r.Country] = true
			}
		}
		for _, c := range t.Categories {
			cats[c] = true
		}
	}
	out := []incidentDeadline{}
	if len(rep.Transfers) == 0 {
		return out
	}
	for _, r := range rules {
		js := hits(r.Jurisdictions, juris)
		cs := hits(r.Categories, cats)
		if len(r.Jurisdictions) > 0 && len(js) == 0 || len(r.Categories) > 0 && len(cs) == 0 {
			continue
		}
		because := "parties in " + strings.Join(slices.Sorted(maps.Keys(juris)), ", ")
		if len(js) > 0 {
			because = "parties in " + strings.Join(js, ", ")
		}
		if len(cs) > 0 {
			because += "; data: " + strings.Join(cs, ", ")
		}
		out = append(out, incidentDeadline{Rule: r.ID, Law: r.Law, Notify: r.Notify, Hours: r.Hours,
			Due: scope.Discovered.UTC().Add(time.Duration(r.Hours) * time.Hour), Because: because, Source: r.Source})
	}
	slices.SortStableFunc(out, func(a, b incidentDeadline) int { return a.Due.Compare(b.Due) })
	return out
}

func hits(want []string, have map[string]bool) []string {
	var out []string
	for _, w := range want {
		if have[w] {
			out = append(out, w)
		}
	}
	return out
}

// strictJSON decodes b into v, refusing unknown fields.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
