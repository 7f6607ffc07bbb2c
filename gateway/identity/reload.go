package identity

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// DefaultWatchInterval is how often [Source.Watch] looks at the SVID and
// bundle files when Config.WatchInterval is zero.
const DefaultWatchInterval = 2 * time.Second

// ErrNotReloadable is returned by [Source.Reload] for a Workload API source,
// whose SVIDs and bundles stream in by themselves.
var ErrNotReloadable = errors.New("identity: the workload API source rotates by itself; there are no files to reload")

// fileSet names the files of a file source.
type fileSet struct {
	cert, key string
	bundles   map[spiffeid.TrustDomain]string
}

// fileStamp is the SHA-256 of the contents of every file of a fileSet, so
// that a renewed file is noticed whatever its mtime says (a copy with cp -p,
// a file system with coarse timestamps).
type fileStamp [sha256.Size]byte

// stamp hashes the files' contents; a missing file is an error.
func (f *fileSet) stamp() (fileStamp, error) {
	h := sha256.New()
	type file struct{ field, path string }
	files := []file{{"svid_cert", f.cert}, {"svid_key", f.key}}
	for _, td := range slices.SortedFunc(maps.Keys(f.bundles), func(a, b spiffeid.TrustDomain) int {
		return strings.Compare(a.Name(), b.Name())
	}) {
		files = append(files, file{"bundles[" + td.Name() + "]", f.bundles[td]})
	}
	for _, fl := range files {
		fh, err := os.Open(fl.path)
		if err != nil {
			return fileStamp{}, fmt.Errorf("%s: %w", fl.field, err)
		}
		fmt.Fprintf(h, "%s\x00", fl.path)
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return fileStamp{}, fmt.Errorf("%s: %s: %w", fl.field, fl.path, err)
		}
	}
	var s fileStamp
	h.Sum(s[:0])
	return s, nil
}

// Reload loads the file source's SVID, key and bundles again and, if they
// are consistent, puts them in force for every later handshake and
// signature; connections already open keep the certificate they
// authenticated with. The new SVID must verify against the new bundles,
// carry the same SPIFFE ID as before (clients pin the gateway's ID) and be
// within its validity. On any error the SVID and bundles in force stay, and
// the error names the file at fault. A Workload API source returns
// [ErrNotReloadable].
func (s *Source) Reload() error {
	if s.files == nil {
		return ErrNotReloadable
	}
	s.reload.Lock()
	defer s.reload.Unlock()
	st, err := s.files.stamp()
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	set, err := loadBundles(s.files.bundles)
	if err != nil {
		return err
	}
	svid, err := x509svid.Load(s.files.cert, s.files.key)
	if err != nil {
		return fmt.Errorf("identity: svid_cert %s, svid_key %s: %w", s.files.cert, s.files.key, err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, set); err != nil {
		return fmt.Errorf("identity: svid_cert %s (%s) does not verify against the configured bundles: %w", s.files.cert, svid.ID, err)
	}
	if old := s.svid.Load(); old != nil && old.ID != svid.ID {
		return fmt.Errorf("identity: svid_cert %s holds %s, but this gateway is %s: its clients pin that ID; restart to change it", s.files.cert, svid.ID, old.ID)
	}
	if old := s.svid.Load(); old != nil {
		s.log.Info("identity: X.509-SVID reloaded from files", slog.String("spiffe_id", svid.ID.String()),
			slog.Time("not_after", svid.Certificates[0].NotAfter), slog.String("svid_cert", s.files.cert))
	}
	if s.svid.Load() == nil {
		s.id = svid.ID // the first load, in New, before s is shared
	}
	s.bundles.Store(set)
	s.svid.Store(svid)
	s.loaded.Store(&st)
	return nil
}

// Watch reloads the file source whenever its files' contents change, every
// Config.WatchInterval, until ctx is done. A change that does not load (a
// key written after its certificate, a bad file) is logged and tried again
// at each tick until it loads, while the last good SVID keeps serving. With
// the Workload API, or a negative interval, Watch returns at once.
func (s *Source) Watch(ctx context.Context) {
	if s.files == nil || s.watch < 0 {
		return
	}
	tick := time.NewTicker(s.watch)
	defer tick.Stop()
	var failed fileStamp // the last stamp that failed to load, logged once
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st, err := s.files.stamp()
		if err != nil {
			if failed != (fileStamp{}) {
				continue
			}
			failed = fileStamp{1}
			s.log.Warn("identity: cannot read the SVID or bundle files; the loaded SVID keeps serving", slog.String("error", err.Error()))
			continue
		}
		if last := s.loaded.Load(); last != nil && *last == st {
			continue
		}
		if err := s.Reload(); err != nil {
			if failed != st {
				failed = st
				s.log.Warn("identity: changed SVID or bundle files do not load; the loaded SVID keeps serving", slog.String("error", err.Error()))
			}
			continue
		}
		failed = fileStamp{}
	}
}
