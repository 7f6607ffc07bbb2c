package cli

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// writeIncidentMarkdown renders the report for a security team to hand to
// counsel: deadlines first, then totals, groups, transfers, keys, refusals.
func writeIncidentMarkdown(w io.Writer, rep IncidentReport) error {
	var b strings.Builder
	s := rep.Scope
	subject := "organisation " + s.Org
	switch {
	case s.Identity != "":
		subject = "identity " + s.Identity
	case s.Matter != "":
		subject = "matter " + s.Matter
	}
	fmt.Fprintf(&b, "# Incident report: %s\n\n", subject)
	until := "now"
	if !s.Until.IsZero() {
		until = ts(s.Until)
	}
	fmt.Fprintf(&b, "- Window: %s to %s\n- Discovered: %s\n- Seen from: %s (entries of other organisations are not shown)\n\n", ts(s.Since), until, ts(s.Discovered), s.Viewer)

	b.WriteString("## Notification deadlines\n\n")
	if len(rep.Deadlines) == 0 {
		b.WriteString("No rule applies to what is in scope.\n\n")
	} else {
		b.WriteString("| due (UTC) | within | law | notify | because |\n|---|---|---|---|---|\n")
		for _, d := range rep.Deadlines {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", ts(d.Due), hoursText(d.Hours), d.Law, d.Notify, d.Because)
		}
		b.WriteString("\nSources: deadlines are data (incident_deadlines.json); check them with counsel.\n\n")
	}

	t := rep.Totals
	fmt.Fprintf(&b, "## Totals\n\n| sent | received | downloads | acknowledged | keys registered | refused |\n|---|---|---|---|---|---|\n| %d | %d | %d | %d | %d | %d |\n\n",
		t.Sent, t.Received, t.Downloads, t.Acknowledged, t.KeyRegistrations, t.Refused)

	for _, g := range []struct {
		title string
		rows  []incidentGroup
	}{{"By client", rep.ByClient}, {"By matter", rep.ByMatter}, {"By recipient organisation", rep.ByRecipientOrg}, {"By data category", rep.ByCategory}} {
		fmt.Fprintf(&b, "## %s\n\n| | country | transfers | downloads | acks | bytes |\n|---|---|---|---|---|---|\n", g.title)
		for _, r := range g.rows {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d |\n", r.Key, dash(r.Country), r.Transfers, r.Downloads, r.Acks, r.Bytes)
		}
		b.WriteString("\n")
	}

	b.WriteString("## Transfers\n\n")
	for _, x := range rep.Transfers {
		fmt.Fprintf(&b, "### %s\n\n- Sender: %s\n- Matter: %s (client %s), categories: %s\n- Created: %s, %d bytes of ciphertext\n",
			x.ID, x.Sender, x.Matter, dash(x.Client), dash(strings.Join(x.Categories, ", ")), ts(x.Created), x.Size)
		for _, r := range x.Recipients {
			fmt.Fprintf(&b, "- Recipient: %s (%s, %s)\n", r.ID, r.Org, dash(r.Country))
		}
		fmt.Fprintf(&b, "- Downloads: %d", len(x.Downloads))
		for _, d := range x.Downloads {
			fmt.Fprintf(&b, "; %s by %s", ts(d.Time), d.By)
		}
		fmt.Fprintf(&b, "\n- Acknowledged: %d", len(x.Acks))
		for _, d := range x.Acks {
			fmt.Fprintf(&b, "; %s by %s", ts(d.Time), d.By)
		}
		b.WriteString("\n- Can decrypt (age recipients registered at the time):")
		if len(x.CanDecrypt) == 0 {
			b.WriteString(" unknown (no registration seen)")
		}
		for _, k := range x.CanDecrypt {
			fmt.Fprintf(&b, " %s of %s;", k.Fingerprint, k.Recipient)
		}
		b.WriteString("\n")
		if !x.Destroyed.IsZero() {
			fmt.Fprintf(&b, "- Destroyed: %s\n", ts(x.Destroyed))
		}
		if x.Receipt != nil {
			fmt.Fprintf(&b, "- Receipt: audit entry %d, leaf hash %s (in the JSON report; `lex verify` checks it)\n", x.Receipt.Index, x.Receipt.LeafHash)
		}
		b.WriteString("\n")
	}
	if len(rep.KeyRegistrations) > 0 {
		b.WriteString("## Key registrations\n\n| time | identity | entry | fingerprints |\n|---|---|---|---|\n")
		for _, k := range rep.KeyRegistrations {
			fmt.Fprintf(&b, "| %s | %s | %d | %s |\n", ts(k.Time), k.ID, k.Index, strings.Join(k.Fingerprints, " "))
		}
		b.WriteString("\n")
	}
	if len(rep.Refusals) > 0 {
		b.WriteString("## Refusals\n\n| time | identity | action | matter | reasons | entry |\n|---|---|---|---|---|---|\n")
		for _, r := range rep.Refusals {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d |\n", ts(r.Time), r.Actor, r.Action, dash(r.Matter), strings.Join(r.Reasons, ", "), r.Index)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func hoursText(h int) string {
	if h%24 == 0 && h >= 24*7 {
		return fmt.Sprintf("%d days", h/24)
	}
	return fmt.Sprintf("%d h", h)
}
