package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
)

// inboxWait is how long one long poll of `lex inbox --watch` may wait at
// the gateway before it answers "unchanged".
const inboxWait = 30 * time.Second

// WatchInbox asks for the inbox as a long poll: if it is still the one
// tagged tag, the gateway waits up to wait for a change. ir is nil when
// nothing changed; newTag is the tag to send next time.
func (c *Client) WatchInbox(ctx context.Context, tag string, wait time.Duration) (ir *api.InboxResponse, newTag string, err error) {
	req, err := c.newRequest(ctx, http.MethodGet, api.PathInbox, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "application/json")
	if tag != "" {
		req.Header.Set("If-None-Match", tag)
		req.Header.Set("Prefer", "wait="+strconv.Itoa(int(wait/time.Second)))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", api.PathInbox, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil, resp.Header.Get("ETag"), nil
	case resp.StatusCode/100 != 2:
		return nil, "", replyError(req, resp)
	}
	ir = new(api.InboxResponse)
	if err := json.NewDecoder(resp.Body).Decode(ir); err != nil {
		return nil, "", fmt.Errorf("GET %s: decoding the reply: %w", api.PathInbox, err)
	}
	return ir, resp.Header.Get("ETag"), nil
}

// watchInbox prints each transfer as it arrives in the inbox — first those
// already waiting — until the context ends, reconnecting on its own when
// the connection or the gateway goes away. With exec, it runs the command
// for each new transfer ({id} replaced by its ID) through the shell.
func watchInbox(e *env, jsonOut bool, execCmd string) error {
	seen := map[string]bool{}
	backoff := 250 * time.Millisecond
	for e.ctx.Err() == nil {
		_, c, err := e.dial()
		if err == nil {
			backoff = 250 * time.Millisecond
			err = watchOn(e, c, seen, jsonOut, execCmd)
			c.Close()
		}
		if e.ctx.Err() != nil {
			break
		}
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeDenied {
			return fmt.Errorf("inbox: %w", err) // refused: retrying will not help
		}
		fmt.Fprintf(e.stderr, "lex: inbox watch: %v; reconnecting in %v\n", err, backoff)
		select {
		case <-e.ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	return nil
}

// watchOn long-polls over one connection until an error.
func watchOn(e *env, c *Client, seen map[string]bool, jsonOut bool, execCmd string) error {
	tag := ""
	for {
		ir, next, err := c.WatchInbox(e.ctx, tag, inboxWait)
		if err != nil {
			return err
		}
		tag = next
		if ir == nil {
			continue
		}
		for _, t := range ir.Transfers {
			if seen[t.ID] {
				continue
			}
			seen[t.ID] = true
			printArrival(e, t, jsonOut)
			if execCmd != "" {
				runForTransfer(e, execCmd, t.ID)
			}
		}
	}
}

func printArrival(e *env, t api.Transfer, jsonOut bool) {
	if jsonOut {
		b, _ := json.Marshal(t)
		fmt.Fprintf(e.stdout, "%s\n", b)
		return
	}
	labels := strings.Join(t.Labels, ",")
	if labels == "" {
		labels = "-"
	}
	fmt.Fprintf(e.stdout, "%s\t%s\t%s\t%s\t%d files\t%s\n", t.ID, t.Sender, t.Matter, labels, t.FileCount, humanSize(t.PlaintextSize))
}

// runForTransfer runs the --exec command for transfer id; a failure is
// reported and the watch goes on.
func runForTransfer(e *env, command, id string) {
	if !transferIDRE.MatchString(id) {
		fmt.Fprintf(e.stderr, "lex: inbox watch: not running --exec for the malformed transfer ID %q\n", id)
		return
	}
	cmd := exec.CommandContext(e.ctx, "/bin/sh", "-c", strings.ReplaceAll(command, "{id}", id))
	cmd.Stdout, cmd.Stderr = e.stdout, e.stderr
	cmd.Env = append(os.Environ(), "LEX_TRANSFER_ID="+id)
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(e.stderr, "lex: inbox watch: --exec for %s: %v\n", id, err)
	}
}
