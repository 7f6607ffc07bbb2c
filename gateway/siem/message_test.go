package siem

import (
	"strings"
	"testing"
)

// TestFormat: a decision-log line becomes one RFC 5424 message with the
// documented structured data; values are escaped; bad lines are errors.
func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		name, line, want string
	}{
		{"refusal",
			`{"decision_id":"D1","timestamp":"2026-12-07T08:00:00Z","input":{"action":"send","source":{"id":"spiffe://a.example/p"},"destinations":[{"id":"spiffe://b.example/t"}],"bundle":{"matter":"M-1","labels":["health"],"manifest_hash":"ab"}},"result":{"allow":false,"reasons":[{"code":"hipaa.no_baa"}]},"bundles":{"lexgate":{"revision":"sha256:1"}}}`,
			`<109>1 2026-12-07T08:00:00.000000Z gw lexgate - decision [lexgate@32473 decision_id="D1" action="send" actor="spiffe://a.example/p" recipients="spiffe://b.example/t" allow="false" reasons="hipaa.no_baa" policy_version="sha256:1" matter="M-1" labels="health" manifest_sha256="ab"] send refused D1: hipaa.no_baa`},
		{"allowed, escaped",
			`{"decision_id":"D2","timestamp":"2026-12-07T08:00:00Z","input":{"action":"receive","source":{"id":"x\"]\\"}},"result":{"allow":true,"reasons":[]}}`,
			`<110>1 2026-12-07T08:00:00.000000Z gw lexgate - decision [lexgate@32473 decision_id="D2" action="receive" actor="x\"\]\\" allow="true"] receive allowed D2`},
		{"evaluation error",
			`{"decision_id":"D3","timestamp":"2026-12-07T08:00:00Z","input":{"action":"send","source":{"id":"s"}},"result":{"allow":false},"error":"timeout\nx"}`,
			`<108>1 2026-12-07T08:00:00.000000Z gw lexgate - decision [lexgate@32473 decision_id="D3" action="send" actor="s" allow="false" error="timeout x"] send refused D3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := format([]byte(tc.line), 13, "gw")
			if err != nil || string(got) != tc.want {
				t.Errorf("got  %s (%v)\nwant %s", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "{", `{"timestamp":"2026-12-07T08:00:00Z"}`} {
		if _, err := format([]byte(bad), 13, "gw"); err == nil {
			t.Errorf("format(%q) succeeded", bad)
		}
	}
	audit := `{"v":1,"kind":"decision","time":"2026-12-07T08:00:00Z","actor":"spiffe://a.example/p","action":"send","matter":"M-1","decision":{"id":"D1","allow":false,"reasons":["x"]}}`
	want := `<109>1 2026-12-07T08:00:00.000000Z gw lexgate - audit [lexgate@32473 audit_index="7" kind="decision" actor="spiffe://a.example/p" action="send" matter="M-1" decision_id="D1" allow="false" reasons="x"] audit 7 decision `
	if got, err := formatAudit(7, []byte(audit), 13, "gw"); err != nil || string(got) != want {
		t.Errorf("formatAudit:\ngot  %s (%v)\nwant %s", got, err, want)
	}
	if got := string(frame([]byte("hello"))); got != "5 hello" {
		t.Errorf("frame: %q", got)
	}
}

// FuzzFormat: any line either fails or gives one message: a single line,
// with a PRI, one balanced structured-data element and no raw control
// characters.
func FuzzFormat(f *testing.F) {
	f.Add([]byte(`{"decision_id":"D1","timestamp":"2026-12-07T08:00:00Z","input":{"action":"send","source":{"id":"a"},"bundle":{"matter":"M"}},"result":{"allow":false,"reasons":[{"code":"x"}]}}`))
	f.Add([]byte(`{"decision_id":"]\"\\","input":{"action":"\n"}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		msg, err := format(line, 13, "host name")
		if err != nil {
			return
		}
		s := string(msg)
		if !strings.HasPrefix(s, "<") || strings.ContainsAny(s, "\n\r\x00") {
			t.Fatalf("message %q", s)
		}
		sd := s[strings.Index(s, "[")+1:]
		for i := 0; i < len(sd); i++ {
			switch sd[i] {
			case '\\':
				i++
			case ']':
				return
			}
		}
		t.Fatalf("structured data not closed: %q", s)
	})
}
