package gatewaytest

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/lexgate/lexgate/gateway/audit"
)

// DirFetcher reads a tessera POSIX log straight from its directory.
type DirFetcher string

// ReadCheckpoint reads the log's checkpoint file.
func (d DirFetcher) ReadCheckpoint(context.Context) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), layout.CheckpointPath))
}

// ReadTile reads one hash tile.
func (d DirFetcher) ReadTile(_ context.Context, l, i uint64, p uint8) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), layout.TilePath(l, i, p)))
}

// ReadEntryBundle reads one entry bundle.
func (d DirFetcher) ReadEntryBundle(_ context.Context, i uint64, p uint8) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), layout.EntriesPath(i, p)))
}

// WaitPublished waits until the gateway's published checkpoint covers every
// entry the gateway has appended (checkpoints follow appends by up to the
// publication interval), however slow the machine.
func (e *Env) WaitPublished() {
	e.t.Helper()
	want := e.Gateway.AuditAppended()
	f := DirFetcher(e.Gateway.AuditDir())
	v, err := audit.ParseVerifier(e.Gateway.LogKey())
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var size uint64
		raw, err := f.ReadCheckpoint(context.Background())
		if err == nil {
			var cp *log.Checkpoint
			if cp, err = audit.OpenCheckpoint(raw, v); err == nil {
				size = cp.Size
			}
		}
		if err == nil && size >= want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after 2 minutes the audit checkpoint covers %d of the %d entries appended (%v)", size, want, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AuditEvents waits for the checkpoint to cover every entry appended and
// returns every event of the gateway's audit log, verified against its key.
func (e *Env) AuditEvents() []audit.Event {
	e.t.Helper()
	e.WaitPublished()
	f := DirFetcher(e.Gateway.AuditDir())
	v, err := audit.ParseVerifier(e.Gateway.LogKey())
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	raw, err := f.ReadCheckpoint(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	cp, err := audit.OpenCheckpoint(raw, v)
	if err != nil {
		e.t.Fatal(err)
	}
	var evs []audit.Event
	if _, err := audit.VerifyLog(ctx, f, cp, func(_ uint64, lf audit.Leaf) error {
		ev, err := audit.OpenLocal(string(f), lf)
		evs = append(evs, ev)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return evs
}
