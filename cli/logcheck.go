package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
)

// The audit log, seen from lex. With log_key pinned in the config, every command
// that talks to the gateway first fetches the log's signed checkpoint, verifies it
// with the pinned key, and proves with a consistency proof that the log still
// extends the newest checkpoint lex saw before (kept in
// cache_dir/log/<gateway>/checkpoint). A log that was truncated, forked or
// rewritten fails the command loudly: nothing is sent. lex send also checks that
// each recipient's keys are the latest registration the log records.

// logVerifier parses the pinned log_key, or says how to pin it.
func (c *Config) logVerifier() (note.Verifier, error) {
	if c.LogKey == "" {
		return nil, fmt.Errorf("config %s: log_key is not set: pin the gateway's audit log key (the gateway operator runs \"lexgate log-key\")", c.Path)
	}
	v, err := audit.ParseVerifier(c.LogKey)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", c.Path, err)
	}
	return v, nil
}

// logFetcher reads the gateway's audit log over the API connection, through
// Client.do so a refused handshake is explained like for every other request.
type logFetcher struct{ c *Client }

var _ audit.Fetcher = logFetcher{}

func (f logFetcher) get(ctx context.Context, p string) ([]byte, error) {
	req, err := f.c.newRequest(ctx, http.MethodGet, api.PathLog+p, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.c.do(req)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeNotFound || strings.Contains(err.Error(), "404 Not Found") {
			return nil, fmt.Errorf("audit log %s: %w", p, os.ErrNotExist)
		}
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 16<<20))
}

// ReadCheckpoint implements audit.Fetcher.
func (f logFetcher) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return f.get(ctx, layout.CheckpointPath)
}

// ReadTile implements audit.Fetcher.
func (f logFetcher) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return f.get(ctx, layout.TilePath(level, index, p))
}

// ReadEntryBundle implements audit.Fetcher.
func (f logFetcher) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return f.get(ctx, layout.EntriesPath(index, p))
}

// checkpointFile is where lex keeps the newest checkpoint it verified for this gateway.
func (c *Config) checkpointFile() string {
	sum := sha256.Sum256([]byte(c.GatewayID + " " + c.LogKey))
	return filepath.Join(c.CacheDir, "log", hex.EncodeToString(sum[:8]), "checkpoint")
}

// logState is the gateway's log as lex verified it in this run.
type logState struct {
	v     note.Verifier
	f     logFetcher
	cp    *log.Checkpoint
	cpRaw []byte
}

// followLog verifies the gateway's current checkpoint and its consistency with
// the remembered one, then remembers the current one. Without log_key it does nothing.
func (c *Client) followLog(ctx context.Context, cfg *Config) (*logState, error) {
	if cfg.LogKey == "" {
		return nil, nil
	}
	v, err := cfg.logVerifier()
	if err != nil {
		return nil, err
	}
	f := logFetcher{c}
	raw, err := f.ReadCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := audit.OpenCheckpoint(raw, v)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w: the gateway's log is not the one pinned in log_key", err)
	}
	path := cfg.checkpointFile()
	if old, err := os.ReadFile(path); err == nil {
		oldCP, err := audit.OpenCheckpoint(old, v)
		if err != nil {
			return nil, fmt.Errorf("audit log: remembered checkpoint %s: %w", path, err)
		}
		if err := audit.CheckConsistency(ctx, f, oldCP, cp); err != nil {
			return nil, fmt.Errorf("%w; lex refuses to go on (remembered checkpoint: %s)", err, path)
		}
		if cp.Size <= oldCP.Size {
			return &logState{v: v, f: f, cp: cp, cpRaw: raw}, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := writeFileAtomic(path, raw); err != nil {
		return nil, fmt.Errorf("audit log: remember checkpoint: %w", err)
	}
	return &logState{v: v, f: f, cp: cp, cpRaw: raw}, nil
}

// writeFileAtomic writes b to path (mode 0600) through a temporary file and a rename.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// checkKeys proves that kr's recipients are the latest key registration of kr.ID
// in the log: its receipt verifies with the pinned key, its event is a
// registration of exactly these keys by that identity, its checkpoint is
// consistent with the log lex follows, and no newer registration follows it.
func (c *Client) checkKeys(ctx context.Context, ls *logState, kr *api.KeysResponse) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("KEY TRANSPARENCY: the gateway handed out keys for %s that the audit log does not back: %s; lex refuses to encrypt to them",
			kr.ID, fmt.Sprintf(format, args...))
	}
	if len(kr.LogReceipt) == 0 {
		return fail("no log receipt came with the keys")
	}
	r, err := audit.ParseReceipt(kr.LogReceipt)
	if err != nil {
		return fail("%v", err)
	}
	ev, cp, err := audit.VerifyReceipt(r, ls.v)
	if err != nil {
		return fail("%v", err)
	}
	if ev.Kind != audit.KindKeyRegistration || ev.Actor != kr.ID {
		return fail("the receipt is for a %s by %s", ev.Kind, ev.Actor)
	}
	if !slices.Equal(ev.Keys, kr.Recipients) {
		return fail("the log records %d other key(s) (entry %d)", len(ev.Keys), r.Index)
	}
	newest := ls.cp
	if cp.Size > newest.Size {
		newest = cp
	}
	if err := audit.CheckConsistency(ctx, ls.f, cp, newest); err != nil {
		return fail("the receipt's checkpoint is not in the log lex follows: %v", err)
	}
	if i, ok, err := audit.NewerRegistration(ctx, ls.f, newest, r.Index, kr.ID); err != nil {
		return fail("%v", err)
	} else if ok {
		return fail("a newer registration is logged at entry %d", i)
	}
	return nil
}

// fetchReceipt gets, verifies and saves the caller's receipt for transfer id.
func (c *Client) fetchReceipt(ctx context.Context, cfg *Config, id, path string) (*audit.Receipt, error) {
	v, err := cfg.logVerifier()
	if err != nil {
		return nil, err
	}
	var r audit.Receipt
	if err := c.call(ctx, http.MethodGet, transferPath(id, "/receipt"), nil, &r); err != nil {
		return nil, fmt.Errorf("receipt of %s: %w", id, err)
	}
	if _, _, err := audit.VerifyReceipt(&r, v); err != nil {
		return nil, fmt.Errorf("receipt of %s from the gateway does not verify: %w", id, err)
	}
	if err := writeFileAtomic(path, r.Marshal()); err != nil {
		return nil, fmt.Errorf("save receipt: %w", err)
	}
	return &r, nil
}
