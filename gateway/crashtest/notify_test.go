package crashtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/notify"
	"github.com/lexgate/lexgate/gateway/store"
)

// hookReceiver is an HTTPS webhook endpoint that verifies every signature,
// refuses while refusing is set, and counts accepted deliveries per event id.
type hookReceiver struct {
	t        *testing.T
	secret   string
	srv      *httptest.Server
	mu       sync.Mutex
	refusing bool
	attempts map[string]int
	accepted map[string]int
	changed  chan struct{}
}

func newHookReceiver(t *testing.T) (*hookReceiver, string) {
	key := make([]byte, 32)
	rand.Read(key)
	r := &hookReceiver{t: t, secret: "whsec_" + base64.StdEncoding.EncodeToString(key), refusing: true,
		attempts: map[string]int{}, accepted: map[string]int{}, changed: make(chan struct{}, 4096)}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := notify.Verify(r.secret, req.Header, body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("bad signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var wb notify.WebhookBody
		json.Unmarshal(body, &wb)
		r.mu.Lock()
		defer r.mu.Unlock()
		if wb.Type != store.EventTransferReady {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		r.attempts[wb.EventID]++
		defer func() { r.changed <- struct{}{} }()
		if r.refusing {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.accepted[wb.EventID]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	ca := filepath.Join(t.TempDir(), "hook-ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw}), 0o600)
	cfg := fmt.Sprintf(`notify:
  backoff: 20ms
  max_backoff: 200ms
  poll_interval: 200ms
  webhooks:
    - name: soc
      url: %s/hook
      secret: %s
      ca_file: %s
`, r.srv.URL, r.secret, ca)
	return r, cfg
}

// waitUntil waits for cond over the receiver's counts, woken by each request.
func (r *hookReceiver) waitUntil(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			r.t.Fatalf("timed out waiting for %s: attempts %v, accepted %v", what, r.attempts, r.accepted)
		}
	}
}

// TestNotifyQueuedSurviveKill: events queued while the webhook endpoint is
// down survive a SIGKILL of the gateway; the restarted gateway delivers
// each of them, exactly once, and the outbox ends with every delivery done.
func TestNotifyQueuedSurviveKill(t *testing.T) {
	rcv, cfg := newHookReceiver(t)
	w := newWorld(t, "", cfg)
	g := w.start("")
	ac, tc := w.client(g, alice), w.client(g, team)
	key := registerTeam(t, tc)
	const n = 4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for range n {
		u := w.create(t, ac, ciphertext(t, 1<<10, key.Recipient()), false)
		if err := u.push(ctx, ac, 0); err != nil {
			t.Fatal(err)
		}
	}
	rcv.waitUntil("an attempt at each event", func() bool { return len(rcv.attempts) == n })
	g.kill()
	rcv.mu.Lock()
	rcv.refusing = false
	rcv.mu.Unlock()

	g = w.start("")
	rcv.waitUntil("every event accepted", func() bool { return len(rcv.accepted) == n })
	g.stop()
	for id, c := range rcv.accepted {
		if c != 1 {
			t.Errorf("event %s accepted %d times, want once", id, c)
		}
	}
	s, err := store.Open(context.Background(), store.Config{Dir: w.data})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, st := range []store.DeliveryState{store.DeliveryPending, store.DeliveryParked} {
		if ds, err := s.Deliveries(context.Background(), st); err != nil || len(ds) != 0 {
			t.Errorf("%s deliveries after the run: %+v %v", st, ds, err)
		}
	}
	if ds, _ := s.Deliveries(context.Background(), store.DeliveryDelivered); len(ds) != n {
		t.Errorf("%d deliveries done, want %d", len(ds), n)
	}
}
