package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/notify"
	"github.com/lexgate/lexgate/gateway/store"
)

// fastRetries makes retries quick for a test (the defaults are 10s doubling).
func fastRetries(c *notify.Config) {
	c.Backoff, c.MaxBackoff, c.PollInterval = 20*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
}

// TestWebhookRetriedUntilAccepted: a real gateway posts each event to an
// HTTPS receiver that checks every signature and refuses the first three
// attempts of each event id: every event is accepted exactly once, after
// exactly four attempts, and the outbox records it delivered.
func TestWebhookRetriedUntilAccepted(t *testing.T) {
	rcv := newReceiver(t, 3)
	env := gatewaytest.Start(t, gatewaytest.WithConfig(func(c *gateway.Config) {
		c.Notify.Webhooks = []notify.WebhookConfig{rcv.config("soc")}
		fastRetries(&c.Notify)
	}))
	alice, team := env.NewClient(gatewaytest.Alice, false), env.NewClient(gatewaytest.Team, false)
	const n = 3
	for range n {
		sendOne(t, env, alice, team)
	}
	decision := refuseOne(t, alice, team)
	rcv.waitKinds(map[string]int{store.EventTransferReady: n, store.EventTransferRefused: 1})

	rcv.mu.Lock()
	for id, c := range rcv.accepted {
		if c != 1 || rcv.attempts[id] != 4 {
			t.Errorf("event %s (%s): accepted %d times after %d attempts; want once after 4", id, rcv.kinds[id], c, rcv.attempts[id])
		}
	}
	var refusal *notify.WebhookBody
	for i, b := range rcv.bodies {
		if b.Type == store.EventTransferRefused {
			refusal = &rcv.bodies[i]
		}
	}
	rcv.mu.Unlock()
	if refusal == nil || refusal.Data.DecisionID != decision || refusal.Data.Sender != gatewaytest.Alice ||
		len(refusal.Data.Reasons) == 0 || refusal.Data.Matter != "" {
		t.Errorf("refusal event %+v; want decision %s, the sender, reasons, and no matter (include_matter is off)", refusal, decision)
	}
	parked, err := env.Gateway.Notifier().Parked(context.Background())
	if err != nil || len(parked) != 0 {
		t.Errorf("parked: %+v %v", parked, err)
	}
}

// TestWebhookParkedAndRetried: after max_attempts failures a delivery is
// parked, listed for admins, not tried again on its own; retried on
// request, it is delivered once.
func TestWebhookParkedAndRetried(t *testing.T) {
	rcv := newReceiver(t, 0)
	rcv.setRefuseAll(true)
	env := gatewaytest.Start(t, gatewaytest.WithConfig(func(c *gateway.Config) {
		c.Notify.Webhooks = []notify.WebhookConfig{rcv.config("teams", store.EventTransferReady)}
		c.Notify.MaxAttempts = 2
		fastRetries(&c.Notify)
	}))
	alice, team := env.NewClient(gatewaytest.Alice, false), env.NewClient(gatewaytest.Team, false)
	id := sendOne(t, env, alice, team)
	ctx := context.Background()
	var parked []store.Delivery
	for deadline := time.Now().Add(time.Minute); len(parked) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the delivery was never parked")
		}
		var err error
		if parked, err = env.Gateway.Notifier().Parked(ctx); err != nil {
			t.Fatal(err)
		}
		if len(parked) == 0 {
			<-time.After(20 * time.Millisecond) // polling the store: parking has no signal of its own
		}
	}
	p := parked[0]
	if len(parked) != 1 || p.Endpoint != "webhook:teams" || p.Attempts != 2 || p.LastError == "" || p.Event.Subject != id {
		t.Fatalf("parked: %+v", parked)
	}
	rcv.mu.Lock()
	attempts := rcv.attempts[p.Event.ID]
	rcv.mu.Unlock()
	if attempts != 2 {
		t.Errorf("%d attempts before parking, want 2", attempts)
	}
	admin := "http://" + env.Gateway.AdminAddr()
	var listed []struct {
		Event, Endpoint, Kind string
		LastError             string `json:"last_error"`
	}
	resp, err := http.Get(admin + "/notify/parked")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&listed)
	resp.Body.Close()
	if len(listed) != 1 || listed[0].Event != p.Event.ID || listed[0].Kind != store.EventTransferReady || listed[0].LastError == "" {
		t.Errorf("GET /notify/parked: %+v", listed)
	}
	if resp, err := http.Get(admin + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "\nlexgate_notify_parked_deliveries 1\n") {
			t.Error("/metrics does not count the parked delivery")
		}
	}
	retry := func() int {
		resp, err := http.Post(admin+"/notify/retry?"+url.Values{"event": {p.Event.ID}, "endpoint": {p.Endpoint}}.Encode(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	rcv.setRefuseAll(false)
	if st := retry(); st != http.StatusNoContent {
		t.Fatalf("POST /notify/retry: %d", st)
	}
	rcv.waitKinds(map[string]int{store.EventTransferReady: 1})
	if st := retry(); st != http.StatusNotFound {
		t.Errorf("retrying a delivered event: %d, want 404", st)
	}
}
