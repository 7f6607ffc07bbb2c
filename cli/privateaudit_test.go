package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/transparency-dev/tessera/api/layout"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestPrivateEntriesThreeOrganisations (issue 16): Harbor Law sends to
// Manila; Bogota, a third organisation on the same gateway, verifies the
// log's checkpoints, consistency and whole tree, but obtains no body of the
// other two's entries through export, the tiles, the bodies endpoint or a
// receipt; Harbor Law's export holds its transfer's whole story (Manila's
// delivery and ack included), each entry verified; and a receipt alone
// proves Harbor Law's entry to an outsider with nothing but the log key.
func TestPrivateEntriesThreeOrganisations(t *testing.T) {
	env, alice, team := setup(t, gatewaytest.WithOrganisation(gatewaytest.BogotaTD, "/site/review"))
	bogota := env.ClientConfig(gatewaytest.Bogota)
	mustLex(t, bogota, "keygen")
	mustLex(t, bogota, "register")
	id, receipt := sendJSON(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2025-001", caseFolder(t))
	mustLex(t, team, "receive", id, "-o", t.TempDir()+"/in", "--ack")
	env.WaitPublished()
	secrets := []string{"HL-2025-001", id}

	// Bogota: the whole tree verifies, consistent with what it saw before.
	out := mustLex(t, bogota, "audit", "verify")
	if !strings.Contains(out, "verifies") || !strings.Contains(out, "of bogota-lpo.example open") {
		t.Errorf("bogota's audit verify printed %q", out)
	}
	for _, ev := range exportEvents(t, bogota) {
		if !slices.Contains(audit.Parties(ev, ""), gatewaytest.BogotaTD) {
			t.Errorf("bogota's export holds an entry it is no party to: %+v", ev)
		}
	}
	exported := mustLex(t, bogota, "audit", "export")
	for _, s := range secrets {
		if strings.Contains(exported, s) {
			t.Errorf("bogota's export mentions %q", s)
		}
	}

	// Bogota over the raw API: the tiles, the bodies, the receipt.
	c := env.NewClient(gatewaytest.Bogota, false)
	if st, _, _ := c.Do(http.MethodGet, api.PathLog+layout.CheckpointPath, nil, nil); st != http.StatusOK {
		t.Fatalf("checkpoint: %d", st)
	}
	size := uint64(checkpointSize(t, env))
	var tiles bytes.Buffer
	for b := uint64(0); b*layout.EntryBundleWidth < size; b++ {
		p := layout.EntriesPath(b, layout.PartialTileSize(0, b, size))
		st, body, _ := c.Do(http.MethodGet, api.PathLog+p, nil, nil)
		if st != http.StatusOK {
			t.Fatalf("%s: %d", p, st)
		}
		tiles.Write(body)
	}
	for _, s := range secrets {
		if bytes.Contains(tiles.Bytes(), []byte(s)) {
			t.Errorf("the entry tiles hold %q in the clear", s)
		}
	}
	st, bodies, _ := c.Do(http.MethodGet, api.PathAuditBodies+"?size="+utoa(size), nil, nil)
	if st != http.StatusOK {
		t.Fatalf("bodies: %d %s", st, bodies)
	}
	sc := bufio.NewScanner(bytes.NewReader(bodies))
	for sc.Scan() {
		var b api.AuditBody
		if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
		ev, err := audit.ParseEvent([]byte(b.Body))
		if err != nil || !slices.Contains(audit.Parties(ev, ""), gatewaytest.BogotaTD) {
			t.Errorf("bogota was served the body of entry %d: %s (%v)", b.Index, b.Body, err)
		}
	}
	if st, b, _ := c.Do(http.MethodGet, api.PathTransfer+id+"/receipt", nil, nil); st != http.StatusNotFound {
		t.Errorf("bogota asked for the transfer's receipt: %d %s", st, b)
	}

	// Harbor Law: its export holds its transfer's whole story.
	var kinds []string
	for _, ev := range exportEvents(t, alice, "--matter", "HL-2025-001") {
		kinds = append(kinds, string(ev.Kind))
	}
	for _, k := range []audit.Kind{audit.KindTransferCreated, audit.KindUploadComplete, audit.KindDelivery, audit.KindAck} {
		if !slices.Contains(kinds, string(k)) {
			t.Errorf("harbor's export of the matter lacks %s: %q", k, kinds)
		}
	}

	// An outsider (no lex config, no gateway) checks Harbor's receipt with the log key alone.
	var stdout, stderr strings.Builder
	if code := cli.Main(t.Context(), []string{"verify", "--log-key", env.Gateway.LogKey(), receipt}, nil, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "upload_complete by "+gatewaytest.Alice) {
		t.Errorf("outsider's verify: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	rb, _ := os.ReadFile(receipt)
	r, err := audit.ParseReceipt(rb)
	if err != nil || r.Body == "" || strings.Contains(r.Entry, "HL-2025-001") {
		t.Errorf("the receipt's entry should be a commitment with the body beside it: %+v %v", r, err)
	}
}

func utoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }
