package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
)

// MaxInboxWait bounds how long WatchInbox holds a request.
const MaxInboxWait = 60 * time.Second

// SharedWatchPoll is how often WatchInbox re-reads the inbox on a store
// other replicas write too, whose writes do not wake this process.
const SharedWatchPoll = time.Second

// watchStop ends every WatchInbox in progress when the gateway shuts down,
// and wakes them when the audit log records something: a transfer enters
// an inbox only once its completion is logged, after the store's write.
type watchStop struct {
	once sync.Once
	stop sync.Once
	ch   chan struct{}

	mu      sync.Mutex
	audited chan struct{} // closed at the next audit append
}

func (w *watchStop) nextAppend() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.audited == nil {
		w.audited = make(chan struct{})
	}
	return w.audited
}

// appended wakes the watches waiting for an audit append.
func (w *watchStop) appended() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.audited != nil {
		close(w.audited)
		w.audited = nil
	}
}

func (w *watchStop) done() chan struct{} {
	w.once.Do(func() { w.ch = make(chan struct{}) })
	return w.ch
}

// StopWatches ends the inbox watches in progress (they answer "unchanged"
// at once, and clients ask again) so that a graceful shutdown need not
// wait for long polls. It is idempotent.
func (s *Service) StopWatches() {
	ch := s.watches.done()
	s.watches.stop.Do(func() { close(ch) })
}

// InboxTag is the entity tag of an inbox: it changes when a transfer
// arrives or leaves.
func InboxTag(ts []api.Transfer) string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return tagOf(ids)
}

func tagOf(ids []string) string {
	slices.Sort(ids)
	h := sha256.Sum256([]byte(strings.Join(ids, ",")))
	return `"` + hex.EncodeToString(h[:16]) + `"`
}

// WatchInbox is Inbox as a long poll: when the caller's inbox is still the
// one tagged tag, it waits up to wait (at most MaxInboxWait) for a change.
// changed is false when nothing changed; then ts is nil. The policy decides
// (and the audit log records) each answer with a listing, as for Inbox;
// while waiting, the store's index is only consulted to know when to answer.
func (s *Service) WatchInbox(ctx context.Context, caller spiffeid.ID, tag string, wait time.Duration) (ts []api.Transfer, newTag string, changed bool, err error) {
	if tag == "" || wait <= 0 {
		ts, err = s.Inbox(ctx, caller)
		return ts, InboxTag(ts), true, err
	}
	// Authorize the watch first, as a listing, but answer with a listing
	// only when something changed.
	if _, err := s.Inbox(ctx, caller); err != nil {
		return nil, "", false, err
	}
	timer := time.NewTimer(min(wait, MaxInboxWait))
	defer timer.Stop()
	// Changed wakes on this process's writes only: where other replicas
	// write the same store, their transfers are seen at the next poll.
	var poll <-chan time.Time
	if s.store.Shared() {
		tick := time.NewTicker(SharedWatchPoll)
		defer tick.Stop()
		poll = tick.C
	}
	for {
		wake, appended := s.store.Changed(), s.watches.nextAppend()
		now, err := s.inboxTag(ctx, caller)
		if err != nil {
			return nil, "", false, err
		}
		if now != tag {
			ts, err = s.Inbox(ctx, caller)
			return ts, InboxTag(ts), true, err
		}
		select {
		case <-wake:
		case <-appended:
		case <-poll:
		case <-timer.C:
			return nil, tag, false, nil
		case <-s.watches.done():
			return nil, tag, false, nil
		case <-ctx.Done():
			return nil, "", false, ctx.Err()
		}
		if err := s.checkCaller(ctx, caller, "list_inbox"); err != nil {
			return nil, "", false, err
		}
	}
}

// inboxTag is the tag of what Inbox would list, from the store alone.
func (s *Service) inboxTag(ctx context.Context, caller spiffeid.ID) (string, error) {
	ts, err := s.store.Inbox(ctx, caller.String())
	if err != nil {
		return "", err
	}
	var ids []string
	for _, t := range ts {
		if s.logged(t) && namedRecipient(t, caller.String()) {
			ids = append(ids, t.ID)
		}
	}
	return tagOf(ids), nil
}
