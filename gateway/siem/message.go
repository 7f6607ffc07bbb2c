package siem

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// entry is what the forwarder reads of a decision-log line (OPA's
// decision-log shape, policy.DecisionLogEntry).
type entry struct {
	DecisionID string    `json:"decision_id"`
	Timestamp  time.Time `json:"timestamp"`
	Input      struct {
		Action string `json:"action"`
		Source struct {
			ID string `json:"id"`
		} `json:"source"`
		Destinations []struct {
			ID string `json:"id"`
		} `json:"destinations"`
		Bundle *struct {
			Matter       string   `json:"matter"`
			Labels       []string `json:"labels"`
			ManifestHash string   `json:"manifest_hash"`
		} `json:"bundle"`
	} `json:"input"`
	Result *struct {
		Allow   bool `json:"allow"`
		Reasons []struct {
			Code string `json:"code"`
		} `json:"reasons"`
	} `json:"result"`
	Error        string                               `json:"error"`
	Bundles      map[string]struct{ Revision string } `json:"bundles"`
	Hypothetical bool                                 `json:"hypothetical"`
}

// sdID is the structured-data element's name: "lexgate@32473", under the
// private enterprise number RFC 5612 reserves for documentation, until
// lexgate has its own.
const sdID = "lexgate@32473"

// Syslog severities.
const (
	sevWarning = 4
	sevNotice  = 5
	sevInfo    = 6
)

// record is one decision or audit entry as the forwarder sends it: the
// fields of the documented mapping, rendered as syslog or as OTLP.
type record struct {
	time   time.Time
	sev    int    // syslog severity
	msgid  string // "decision" or "audit"
	params [][2]string
	text   string
}

// parseDecision reads one decision-log line.
func parseDecision(line []byte) (record, error) {
	var e entry
	if err := json.Unmarshal(line, &e); err != nil {
		return record{}, fmt.Errorf("siem: decision log line: %w", err)
	}
	if e.DecisionID == "" {
		return record{}, fmt.Errorf("siem: decision log line without a decision_id")
	}
	allow := e.Result != nil && e.Result.Allow && e.Error == ""
	sev := sevInfo
	switch {
	case e.Error != "":
		sev = sevWarning
	case !allow:
		sev = sevNotice
	}
	var reasons []string
	if e.Result != nil {
		for _, r := range e.Result.Reasons {
			reasons = append(reasons, r.Code)
		}
	}
	var recipients []string
	for _, d := range e.Input.Destinations {
		recipients = append(recipients, d.ID)
	}
	params := [][2]string{
		{"decision_id", e.DecisionID},
		{"action", e.Input.Action},
		{"actor", e.Input.Source.ID},
		{"recipients", strings.Join(recipients, ",")},
		{"allow", strconv.FormatBool(allow)},
		{"reasons", strings.Join(reasons, ",")},
		{"policy_version", e.Bundles["lexgate"].Revision},
	}
	if b := e.Input.Bundle; b != nil {
		params = append(params, [2]string{"matter", b.Matter}, [2]string{"labels", strings.Join(b.Labels, ",")},
			[2]string{"manifest_sha256", b.ManifestHash})
	}
	if e.Hypothetical {
		params = append(params, [2]string{"hypothetical", "true"})
	}
	if e.Error != "" {
		params = append(params, [2]string{"error", e.Error})
	}
	verdict := "allowed"
	if !allow {
		verdict = "refused"
	}
	text := fmt.Sprintf("%s %s %s", e.Input.Action, verdict, e.DecisionID)
	if len(reasons) > 0 {
		text += ": " + strings.Join(reasons, ", ")
	}
	return record{time: e.Timestamp, sev: sev, msgid: "decision", params: params, text: text}, nil
}

// syslog renders r as an RFC 5424 message (without the RFC 5425 length
// prefix).
func (r record) syslog(facility int, hostname string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s lexgate - %s [%s", facility*8+r.sev,
		r.time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), headerField(hostname), r.msgid, sdID)
	for _, p := range r.params {
		if p[1] != "" {
			fmt.Fprintf(&b, ` %s="%s"`, p[0], sdEscape(p[1]))
		}
	}
	b.WriteString("] ")
	b.WriteString(strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, r.text))
	return []byte(b.String())
}

// format turns one decision-log line into an RFC 5424 message.
func format(line []byte, facility int, hostname string) ([]byte, error) {
	r, err := parseDecision(line)
	if err != nil {
		return nil, err
	}
	return r.syslog(facility, hostname), nil
}

// sdEscape escapes a PARAM-VALUE: '"', '\' and ']' get a backslash (RFC
// 5424 section 6.3.3); control characters become spaces.
func sdEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\' || r == ']':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// headerField makes a header field of printable US-ASCII without spaces,
// at most 255 characters, "-" when empty (RFC 5424 section 6).
func headerField(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > 32 && r < 127 && b.Len() < 255 {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// frame prefixes msg with its length (RFC 5425 octet counting).
func frame(msg []byte) []byte {
	return append([]byte(strconv.Itoa(len(msg))+" "), msg...)
}

// auditEntry is what the forwarder reads of an audit log entry
// (audit.Event).
type auditEntry struct {
	Kind           string    `json:"kind"`
	Time           time.Time `json:"time"`
	Actor          string    `json:"actor"`
	Action         string    `json:"action"`
	Recipients     []string  `json:"recipients"`
	Transfer       string    `json:"transfer"`
	Matter         string    `json:"matter"`
	Labels         []string  `json:"labels"`
	ManifestSHA256 string    `json:"manifest_sha256"`
	Decision       *struct {
		ID      string   `json:"id"`
		Allow   bool     `json:"allow"`
		Reasons []string `json:"reasons"`
	} `json:"decision"`
	Detail string `json:"detail"`
}

// parseAudit reads audit log entry index.
func parseAudit(index uint64, entry []byte) (record, error) {
	var e auditEntry
	if err := json.Unmarshal(entry, &e); err != nil {
		return record{}, fmt.Errorf("siem: audit entry %d: %w", index, err)
	}
	if e.Kind == "" {
		return record{}, fmt.Errorf("siem: audit entry %d has no kind", index)
	}
	params := [][2]string{
		{"audit_index", strconv.FormatUint(index, 10)},
		{"kind", e.Kind},
		{"actor", e.Actor},
		{"action", e.Action},
		{"recipients", strings.Join(e.Recipients, ",")},
		{"transfer", e.Transfer},
		{"matter", e.Matter},
		{"labels", strings.Join(e.Labels, ",")},
		{"manifest_sha256", e.ManifestSHA256},
		{"detail", e.Detail},
	}
	sev := sevInfo
	if d := e.Decision; d != nil {
		params = append(params, [2]string{"decision_id", d.ID}, [2]string{"allow", strconv.FormatBool(d.Allow)},
			[2]string{"reasons", strings.Join(d.Reasons, ",")})
		if !d.Allow {
			sev = sevNotice
		}
	}
	return record{time: e.Time, sev: sev, msgid: "audit", params: params,
		text: fmt.Sprintf("audit %d %s %s", index, e.Kind, e.Transfer)}, nil
}

// formatAudit turns audit log entry index into an RFC 5424 message.
func formatAudit(index uint64, entry []byte, facility int, hostname string) ([]byte, error) {
	r, err := parseAudit(index, entry)
	if err != nil {
		return nil, err
	}
	return r.syslog(facility, hostname), nil
}
