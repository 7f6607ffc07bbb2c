package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// Config configures the log. The zero value of each field is a working default.
type Config struct {
	// Dir holds the log in tessera's POSIX layout (tlog-tiles: checkpoint, tile/…).
	// The gateway's default is <store.dir>/audit.
	Dir string `yaml:"dir"`
	// KeyFile is the Ed25519 note signer key that signs checkpoints, created with
	// mode 0600 on first start. The gateway's default is <store.dir>/audit.key.
	KeyFile string `yaml:"key_file"`
	// Origin names the log in its checkpoints and its key (default "lexgate-audit";
	// the gateway uses "<trust domain>/lexgate-audit").
	Origin string `yaml:"origin"`
	// CheckpointInterval is how often a new signed checkpoint is published while the
	// log grows (default 200ms, minimum 100ms). A receipt waits for the checkpoint
	// after its entry, so this bounds the receipt latency.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// BatchMaxAge is how long an entry may wait for others to be sequenced with it
	// (default 10ms). Every append waits for its batch to be written and integrated.
	BatchMaxAge time.Duration `yaml:"batch_max_age"`
	// AppendTimeout bounds how long an append waits for its entry to be
	// integrated (default 30s). A log whose disk or database stalls (MariaDB
	// waits for space on a full disk) then fails the action it records,
	// which is not acknowledged, instead of holding the request forever.
	AppendTimeout time.Duration `yaml:"append_timeout"`
	// MySQL keeps the log in a MySQL or MariaDB database that every replica
	// of a cluster appends to, instead of in Dir (see driver.go). Checkpoints
	// then come at most once a second (checkpoint_interval defaults to 1s).
	MySQL MySQLConfig `yaml:"mysql"`

	// Operator is the gateway's own SPIFFE ID: it is no party to the
	// entries of its own actions (see Parties).
	Operator string `yaml:"-"`

	// Rand is the source of private entries' salts (default crypto/rand);
	// tests inject a fixed one for reproducible logs.
	Rand io.Reader `yaml:"-"`

	// Now is the clock for event times (default time.Now).
	Now func() time.Time `yaml:"-"`
	// Logger receives operational messages (default slog.Default()).
	Logger *slog.Logger `yaml:"-"`
}

func (c Config) withDefaults() Config {
	if c.Origin == "" {
		c.Origin = "lexgate-audit"
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 200 * time.Millisecond
		if c.shared() {
			c.CheckpointInterval = mysqlMinCheckpoint
		}
	}
	if c.BatchMaxAge == 0 {
		c.BatchMaxAge = 10 * time.Millisecond
	}
	if c.AppendTimeout == 0 {
		c.AppendTimeout = 30 * time.Second
	}
	if c.KeyFile == "" && c.Dir != "" {
		c.KeyFile = filepath.Clean(c.Dir) + ".key"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	if c.CheckpointInterval != 0 && c.CheckpointInterval < 100*time.Millisecond {
		return fmt.Errorf("audit: checkpoint_interval %v is below the minimum of 100ms", c.CheckpointInterval)
	}
	if c.shared() && c.CheckpointInterval != 0 && c.CheckpointInterval < mysqlMinCheckpoint {
		return fmt.Errorf("audit: checkpoint_interval %v is below the MySQL driver's minimum of %v", c.CheckpointInterval, mysqlMinCheckpoint)
	}
	if c.BatchMaxAge < 0 {
		return errors.New("audit: batch_max_age must not be negative")
	}
	if c.AppendTimeout < 0 {
		return errors.New("audit: append_timeout must not be negative")
	}
	return nil
}

// Log is the gateway's append-only audit log: a tessera tile log in a directory,
// with checkpoints signed by the gateway's key. It is safe for concurrent use.
type Log struct {
	cfg      Config
	signer   note.Signer
	verifier note.Verifier
	vkey     string
	add      tessera.AddFn
	reader   tessera.LogReader
	awaiter  *tessera.PublicationAwaiter
	shutdown func(context.Context) error
	cancel   context.CancelFunc
	release  func() // the driver's database, if any

	bodies *bodyStore // private entries' bodies (bodies.go)

	mu      sync.Mutex
	index   map[string]uint64   // lookupKey → latest index
	commits map[uint64][32]byte // private entries' commitments
	parties map[string][]uint64 // trust domain → the private entries it is a party to
	indexed uint64              // entries [0, indexed) are indexed
	catchMu sync.Mutex          // one catchUp at a time
	close   sync.Once

	appended atomic.Uint64 // one past the highest index this process appended
}

// Open opens (or creates) the log in cfg.Dir and starts publishing checkpoints. It
// reads every entry once to index receipts and key registrations.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Dir == "" && !cfg.shared() {
		return nil, errors.New("audit: dir is required")
	}
	if cfg.KeyFile == "" {
		return nil, errors.New("audit: key_file is required with mysql (every replica signs with the same key)")
	}
	signer, vkey, err := loadOrCreateKey(cfg.KeyFile, cfg.Origin)
	if err != nil {
		return nil, err
	}
	verifier, err := ParseVerifier(vkey)
	if err != nil {
		return nil, err
	}
	if !cfg.shared() {
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	// The appender's goroutines live until Close, not until the caller's ctx ends.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	driver, sharedDB, release, err := openDriver(bg, cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("audit: open %s: %w", cfg.where(), err)
	}
	bodies, err := openBodies(bg, filepath.Join(cfg.Dir, "bodies"), sharedDB, cfg.Logger, cfg.AppendTimeout, true)
	if err != nil {
		cancel()
		release()
		return nil, fmt.Errorf("audit: open %s: %w", cfg.where(), err)
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithCheckpointInterval(cfg.CheckpointInterval).
		WithBatching(tessera.DefaultBatchMaxSize, cfg.BatchMaxAge)
	app, shutdown, reader, err := tessera.NewAppender(bg, driver, opts)
	if err != nil {
		cancel()
		bodies.close()
		release()
		return nil, fmt.Errorf("audit: open %s: %w", cfg.where(), err)
	}
	l := &Log{release: release, cfg: cfg, signer: signer, verifier: verifier, vkey: vkey, add: app.Add, reader: reader,
		shutdown: shutdown, cancel: cancel, index: map[string]uint64{},
		bodies: bodies, commits: map[uint64][32]byte{}, parties: map[string][]uint64{}}
	l.awaiter = tessera.NewPublicationAwaiter(bg, reader.ReadCheckpoint, awaitPoll(cfg.CheckpointInterval))
	if err := l.firstCheckpoint(ctx); err != nil {
		l.Close()
		return nil, err
	}
	if err := l.buildIndex(ctx); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// firstCheckpoint waits for a new log's first checkpoint (published within one
// interval), so clients never meet a log without one.
func (l *Log) firstCheckpoint(ctx context.Context) error {
	deadline := time.Now().Add(10*l.cfg.CheckpointInterval + 5*time.Second)
	for {
		_, err := l.reader.ReadCheckpoint(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return fmt.Errorf("audit: no checkpoint published in %s: %w", l.cfg.where(), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// VerifierKey is the log's public key in note verifier format
// ("origin+hash+base64"): what lex pins as log_key.
func (l *Log) VerifierKey() string { return l.vkey }

// Origin is the log's name in its checkpoints.
func (l *Log) Origin() string { return l.cfg.Origin }

// Reader reads the log as a tlog client would, from its directory.
func (l *Log) Reader() Fetcher { return l.reader }

// Dir is where the log's tiles live.
func (l *Log) Dir() string { return l.cfg.Dir }

// Close publishes what was appended and stops the log. It is idempotent.
func (l *Log) Close() error {
	var err error
	l.close.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if serr := l.shutdown(ctx); serr != nil {
			err = fmt.Errorf("audit: close: %w", serr)
		}
		l.cancel()
		l.bodies.close()
		l.release()
	})
	return err
}

// Append writes ev to the log and returns its index once the entry is sequenced
// and integrated into the tree on disk. An error means the entry is not in the
// log: the caller must not acknowledge the action it records (fail closed).
func (l *Log) Append(ctx context.Context, ev Event) (uint64, error) {
	// tessera's futures take no context, and a storage that stalls would
	// hold the caller for as long as it stalls: the whole append is bounded
	// by AppendTimeout. It is not cut short when the caller's request ends:
	// an entry under way is written, as it was before the bound.
	ctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), l.cfg.AppendTimeout,
		fmt.Errorf("%w (%v; is its disk or database full or down?)", ErrAppendTimeout, l.cfg.AppendTimeout))
	defer cancel()
	if ev.Time.IsZero() {
		ev.Time = l.cfg.Now()
	}
	leaf, salt, body, err := seal(ev, l.cfg.Rand)
	if err != nil {
		return 0, err
	}
	var commitment []byte
	if salt != nil {
		commitment = Commit(salt, body)
		if err := l.bodies.put(ctx, commitment, salt, body); err != nil {
			return 0, causeOf(ctx, err)
		}
	}
	// An entry that lands after the bound is still remembered, so that the
	// retry of the refused action finds it logged instead of logging it twice.
	idx, err := await(ctx, l.add(ctx, tessera.NewEntry(leaf)), func(idx tessera.Index) {
		l.mu.Lock()
		l.remember(idx.Index, ev, commitment)
		l.mu.Unlock()
		for n := l.appended.Load(); idx.Index+1 > n && !l.appended.CompareAndSwap(n, idx.Index+1); n = l.appended.Load() {
		}
	})
	if err != nil {
		return 0, fmt.Errorf("audit: append %s: %w", ev.Kind, causeOf(ctx, err))
	}
	return idx.Index, nil
}

// ErrAppendTimeout: the log did not take an entry within append_timeout.
// The entry may still land later (then it records an action that was
// refused, which a retry of the action finds logged).
var ErrAppendTimeout = errors.New("the audit log did not take the entry in time")

// causeOf is err, or why ctx ended when it did (ErrAppendTimeout).
func causeOf(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	return err
}

// await resolves an append's future, giving up when ctx ends; landed is
// called with the entry's index once it is integrated, even after that.
func await(ctx context.Context, f tessera.IndexFuture, landed func(tessera.Index)) (tessera.Index, error) {
	type result struct {
		idx tessera.Index
		err error
	}
	done := make(chan result, 1)
	go func() {
		idx, err := f()
		if err == nil {
			landed(idx)
		}
		done <- result{idx, err}
	}()
	select {
	case r := <-done:
		return r.idx, r.err
	case <-ctx.Done():
		return tessera.Index{}, ctx.Err()
	}
}

// Appended is one past the highest index this process has appended: once a
// published checkpoint covers it, everything this process logged is public.
func (l *Log) Appended() uint64 { return l.appended.Load() }

// Find returns the index of the latest entry with lookup key key (LookupUpload,
// LookupAck, LookupKeys, LookupCreated, LookupQuarantine), or false.
func (l *Log) Find(key string) (uint64, bool) {
	l.mu.Lock()
	i, ok := l.index[key]
	l.mu.Unlock()
	if !ok && l.cfg.shared() {
		// Another replica may have logged it: read what it appended.
		ctx, cancel := context.WithTimeout(context.Background(), min(10*time.Second, l.cfg.AppendTimeout))
		defer cancel()
		if err := l.catchUp(ctx); err != nil {
			l.cfg.Logger.Warn("audit: reading other replicas' entries", "err", err)
		}
		l.mu.Lock()
		i, ok = l.index[key]
		l.mu.Unlock()
	}
	return i, ok
}

// Receipt waits for a signed checkpoint that commits to entry index and returns
// the entry with its inclusion proof under that checkpoint.
func (l *Log) Receipt(ctx context.Context, index uint64) (*Receipt, error) {
	_, cpRaw, err := l.awaiter.Await(ctx, func() (tessera.Index, error) { return tessera.Index{Index: index}, nil })
	if err != nil {
		return nil, fmt.Errorf("audit: wait for a checkpoint covering entry %d: %w", index, err)
	}
	cp, _, _, err := log.ParseCheckpoint(cpRaw, l.cfg.Origin, l.verifier)
	if err != nil {
		return nil, fmt.Errorf("audit: own checkpoint: %w", err)
	}
	r, err := buildReceipt(ctx, l.reader, cp, cpRaw, index)
	if err != nil {
		return nil, err
	}
	lf, err := ParseLeaf([]byte(r.Entry))
	if err != nil {
		return nil, fmt.Errorf("audit: entry %d: %w", index, err)
	}
	if lf.Public == nil {
		salt, body, err := l.bodies.get(lf.Commitment)
		if err != nil {
			return nil, fmt.Errorf("audit: entry %d: %w", index, err)
		}
		r.Salt, r.Body = salt, string(body)
	}
	return r, nil
}

// buildReceipt reads entry index and its inclusion proof under cp from r.
func buildReceipt(ctx context.Context, r Fetcher, cp *log.Checkpoint, cpRaw []byte, index uint64) (*Receipt, error) {
	entry, err := readEntry(ctx, r, index, cp.Size)
	if err != nil {
		return nil, err
	}
	pb, err := client.NewProofBuilder(ctx, cp.Size, tileFetcher(r))
	if err != nil {
		return nil, fmt.Errorf("audit: proof builder: %w", err)
	}
	proof, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("audit: inclusion proof of entry %d: %w", index, err)
	}
	return &Receipt{Version: ReceiptVersion, Index: index, Entry: string(entry), LeafHash: leafHash(entry),
		TreeSize: cp.Size, InclusionProof: proof, Checkpoint: string(cpRaw)}, nil
}

// Fetcher reads a tlog-tiles log: tessera's LogReader on the gateway, an HTTP
// fetcher in lex.
type Fetcher interface {
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error)
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
}

var _ Fetcher = tessera.LogReader(nil)

// tileFetcher reads a partial tile, falling back to the full tile once the partial
// one was garbage-collected.
func tileFetcher(r Fetcher) client.TileFetcherFunc {
	return func(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
		b, err := r.ReadTile(ctx, level, index, p)
		if err != nil && p != 0 && errors.Is(err, os.ErrNotExist) {
			return r.ReadTile(ctx, level, index, 0)
		}
		return b, err
	}
}

func bundleFetcher(r Fetcher) client.EntryBundleFetcherFunc {
	return func(ctx context.Context, index uint64, p uint8) ([]byte, error) {
		b, err := r.ReadEntryBundle(ctx, index, p)
		if err != nil && p != 0 && errors.Is(err, os.ErrNotExist) {
			return r.ReadEntryBundle(ctx, index, 0)
		}
		return b, err
	}
}

// readEntry returns entry index of a log of size size.
func readEntry(ctx context.Context, r Fetcher, index, size uint64) ([]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("audit: entry %d is beyond the log's size %d", index, size)
	}
	b, err := client.GetEntryBundle(ctx, bundleFetcher(r), index/layout.EntryBundleWidth, size)
	if err != nil {
		return nil, fmt.Errorf("audit: read entry %d: %w", index, err)
	}
	i := index % layout.EntryBundleWidth
	if i >= uint64(len(b.Entries)) {
		return nil, fmt.Errorf("audit: entry bundle of entry %d holds only %d entries", index, len(b.Entries))
	}
	return b.Entries[i], nil
}

// buildIndex reads every integrated entry once.
func (l *Log) buildIndex(ctx context.Context) error { return l.catchUp(ctx) }

// indexEntry adds entry i to the lookup index (and a private entry to the
// commitments and parties). The caller holds l.mu.
func (l *Log) indexEntry(i uint64, entry []byte) error {
	lf, err := ParseLeaf(entry)
	if err != nil {
		return fmt.Errorf("audit: entry %d: %w", i, err)
	}
	if lf.Public != nil {
		l.remember(i, *lf.Public, nil)
		return nil
	}
	salt, body, err := l.bodies.get(lf.Commitment)
	if err == nil {
		var ev Event
		if ev, err = lf.Open(salt, body); err == nil {
			l.remember(i, ev, lf.Commitment)
			return nil
		}
	}
	// The log stays consistent without it; only this entry cannot be shown.
	l.cfg.Logger.Error("audit: a private entry's body is unusable: the entry cannot be shown to its parties", "index", i, "err", err)
	var c [32]byte
	copy(c[:], lf.Commitment)
	l.commits[i] = c
	return nil
}

// Walk calls fn for every entry of a log of size size, in order.
func Walk(ctx context.Context, r Fetcher, size uint64, fn func(index uint64, entry []byte) error) error {
	for b := uint64(0); b*layout.EntryBundleWidth < size; b++ {
		bundle, err := client.GetEntryBundle(ctx, bundleFetcher(r), b, size)
		if err != nil {
			return fmt.Errorf("audit: read entry bundle %d: %w", b, err)
		}
		want := min(size-b*layout.EntryBundleWidth, layout.EntryBundleWidth)
		if uint64(len(bundle.Entries)) < want {
			return fmt.Errorf("audit: entry bundle %d holds %d entries, the log's size needs %d", b, len(bundle.Entries), want)
		}
		for i, e := range bundle.Entries[:want] {
			if err := fn(b*layout.EntryBundleWidth+uint64(i), e); err != nil {
				return err
			}
		}
	}
	return nil
}

func newProofBuilder(ctx context.Context, r Fetcher, size uint64) (*client.ProofBuilder, error) {
	pb, err := client.NewProofBuilder(ctx, size, tileFetcher(r))
	if err != nil {
		return nil, fmt.Errorf("audit: proof builder: %w", err)
	}
	return pb, nil
}

func getBundle(ctx context.Context, r Fetcher, b, size uint64) (api.EntryBundle, error) {
	bundle, err := client.GetEntryBundle(ctx, bundleFetcher(r), b, size)
	if err != nil {
		return bundle, fmt.Errorf("audit: read entry bundle %d: %w", b, err)
	}
	return bundle, nil
}

// awaitPoll is how often the log looks for a new checkpoint while receipts
// wait for one: an eighth of the checkpoint interval, between 10 and 25 ms
// (25 ms at the default 200 ms). The poll runs all the time, idle or not: at
// 10 ms it cost an idle gateway about 4 % of a core (reading the checkpoint
// file a hundred times a second), against 2.5 % at 25 ms, for receipts at
// most 15 ms later.
func awaitPoll(checkpoint time.Duration) time.Duration {
	return min(25*time.Millisecond, max(10*time.Millisecond, checkpoint/8))
}
