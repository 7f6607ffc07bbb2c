package notify_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/notify"
)

// newSecret makes a Standard Webhooks secret.
func newSecret(t testing.TB) string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// receiver is an HTTPS webhook endpoint that verifies every request's
// signature, refuses the first failFirst attempts of each event id (with
// 503) and then accepts, counting what it accepted per event id.
type receiver struct {
	t         testing.TB
	secret    string
	srv       *httptest.Server
	caFile    string
	mu        sync.Mutex
	failFirst int
	refuseAll bool
	attempts  map[string]int
	accepted  map[string]int
	kinds     map[string]string // event id → kind
	bodies    []notify.WebhookBody
	arrived   chan struct{} // one value per accepted delivery
}

func newReceiver(t testing.TB, failFirst int) *receiver {
	r := &receiver{t: t, secret: newSecret(t), failFirst: failFirst, attempts: map[string]int{},
		accepted: map[string]int{}, kinds: map[string]string{}, arrived: make(chan struct{}, 1024)}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.caFile = filepath.Join(t.TempDir(), "receiver-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
	if err := os.WriteFile(r.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := notify.Verify(r.secret, req.Header, body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("webhook with a bad signature: %v (%s)", err, body)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var wb notify.WebhookBody
	if err := json.Unmarshal(body, &wb); err != nil || wb.EventID != req.Header.Get(notify.HeaderID) ||
		req.Header.Get("Idempotency-Key") != wb.EventID {
		r.t.Errorf("webhook body %s (%v), headers %v", body, err, req.Header)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := req.Header.Get(notify.HeaderID)
	r.attempts[id]++
	if r.refuseAll || r.attempts[id] <= r.failFirst {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	r.accepted[id]++
	r.kinds[id] = wb.Type
	r.bodies = append(r.bodies, wb)
	w.WriteHeader(http.StatusNoContent)
	r.arrived <- struct{}{}
}

func (r *receiver) setRefuseAll(v bool) {
	r.mu.Lock()
	r.refuseAll = v
	r.mu.Unlock()
}

// acceptedKinds counts accepted events per kind.
func (r *receiver) acceptedKinds() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for id := range r.accepted {
		out[r.kinds[id]]++
	}
	return out
}

// waitKinds waits until the receiver accepted at least want[kind] events of
// each kind, failing after a generous deadline.
func (r *receiver) waitKinds(want map[string]int) {
	r.t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		got := r.acceptedKinds()
		done := true
		for k, n := range want {
			done = done && got[k] >= n
		}
		if done {
			return
		}
		select {
		case <-r.arrived:
		case <-deadline:
			r.t.Fatalf("accepted %v, want at least %v", got, want)
		}
	}
}

func (r *receiver) config(name string, events ...string) notify.WebhookConfig {
	return notify.WebhookConfig{Name: name, URL: r.srv.URL + "/hook", Secret: r.secret, CAFile: r.caFile, Events: events}
}

// sendOne makes a ready transfer from Alice to the review team, returning its id.
func sendOne(t testing.TB, env *gatewaytest.Env, alice, team *gatewaytest.Client) string {
	t.Helper()
	ct := gatewaytest.Encrypt(t, []byte("the bundle"), team.Register().Recipient())
	st, tr, e := alice.Create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %+v", st, e)
	}
	if st, b, _ := alice.Upload(tr.ID, 0, ct); st != http.StatusNoContent {
		t.Fatalf("upload: %d %s", st, b)
	}
	return tr.ID
}

// refuseOne has Alice try a send the policy refuses (health data to an
// LPO without a BAA), returning the decision id.
func refuseOne(t testing.TB, alice *gatewaytest.Client, team *gatewaytest.Client) string {
	t.Helper()
	ct := gatewaytest.Encrypt(t, []byte("x"), team.Register().Recipient())
	st, _, e := alice.Create([]string{gatewaytest.Team}, []string{"health"}, ct, nil)
	if st != http.StatusForbidden {
		t.Fatalf("create of a refused send: %d %+v", st, e)
	}
	return e.DecisionID
}
