package sftpfront_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// scrape returns the gateway's /metrics (admin listener).
func scrape(t testing.TB, env *gatewaytest.Env) string {
	t.Helper()
	resp, err := http.Get("http://" + env.Gateway.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric is the value of one sample line of m, "" when absent.
func metric(m, sample string) string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	if s := re.FindStringSubmatch(m); s != nil {
		return s[1]
	}
	return ""
}

// TestMetrics: the front's metrics on the gateway's registry: sessions open,
// logins, file bytes in and out, refusals by reason code (the front's own and
// the policy's), and identical re-uploads.
func TestMetrics(t *testing.T) {
	f := start(t)
	dir := t.TempDir()
	src, _ := randomFile(t, dir, "in.bin", 300_000)
	cmd, stdin := f.sftpOpen(t)
	waitFor(t, "the session to be counted", func() bool { return metric(scrape(t, f.env), "lexgate_sftp_sessions") == "1" })
	stdin.Close()
	cmd.Wait()

	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o700)
	randomFile(t, bundle, "memo.txt", 50_000)
	mustLex(t, f.team, "send", "--to", gatewaytest.DMS, "--matter", matter, bundle)
	ts := inbox(t, f.dms)
	name := sftpfront.InboxName(ts[0])
	batch := "put " + src + " /outbox/team/\nput " + src + " /outbox/team/\nget /inbox/" + name + " " + dir + "/got.age\n"
	if out, err := f.sftp(t, batch); err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	f.sftp(t, "put "+src+" /etc/x\n")
	f.sftp(t, "put "+src+" /outbox/evil.example+x/y\n")

	var m string
	waitFor(t, "the sessions to close", func() bool {
		m = scrape(t, f.env)
		return metric(m, "lexgate_sftp_sessions") == "0"
	})
	for sample, want := range map[string]string{
		"lexgate_sftp_logins_total":                             "4",
		"lexgate_sftp_bytes_in_total":                           "600000", // twice: the second is recognised after it arrived
		"lexgate_sftp_bytes_out_total":                          fmt.Sprint(ts[0].CiphertextSize),
		"lexgate_sftp_duplicate_uploads_total":                  "1",
		`lexgate_sftp_refusals_total{code="sftp.outside_tree"}`: "1",
		`lexgate_sftp_refusals_total{code="org.unknown"}`:       "1", // the policy's reason code
	} {
		if got := metric(m, sample); got != want {
			t.Errorf("%s = %q, want %s\n%s", sample, got, want, grep(m, "lexgate_sftp_"))
		}
	}
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
