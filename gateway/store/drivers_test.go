package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/lexgate/lexgate/gateway/internal/enginetest"
)

// The shared driver suite: every test below runs, with the same
// assertions, against each metadata driver — the embedded SQLite and
// PostgreSQL (a private cluster this package's tests start and stop).

type driverTest struct {
	name string
	fn   func(t *testing.T, openStore func(testing.TB, string) *Store)
}

var driverTests = []driverTest{
	{"Keys", testKeys},
	{"CreateTransferInvalid", testCreateTransferInvalid},
	{"CreateTransfer", testCreateTransfer},
	{"InboxOutbox", testInboxOutbox},
	{"Ack", testAck},
	{"DeleteTransfer", testDeleteTransfer},
	{"Stats", testStats},
	{"Reopen", testReopen},
	{"TransferRoundTripZeroValues", testTransferRoundTripZeroValues},
	{"WriteAtChunks", testWriteAtChunks},
	{"WriteAtHashMismatch", testWriteAtHashMismatch},
	{"WriteAtOffsetMismatch", testWriteAtOffsetMismatch},
	{"WriteAtTooLarge", testWriteAtTooLarge},
	{"WriteAtBrokenReader", testWriteAtBrokenReader},
	{"WriteAtCancelled", testWriteAtCancelled},
	{"CrashRecovery", testCrashRecovery},
	{"ConcurrentWriteAt", testConcurrentWriteAt},
	{"RecoverSpoolRemovesStale", testRecoverSpoolRemovesStale},
	{"WriteAtWaitHonoursContext", testWriteAtWaitHonoursContext},
	{"WriteAtLostSpoolBytesRestart", testWriteAtLostSpoolBytesRestart},
	{"WriteRangeOutOfOrder", testWriteRangeOutOfOrder},
	{"WriteRangeRefusals", testWriteRangeRefusals},
	{"WriteAtJoinsRanges", testWriteAtJoinsRanges},
	{"CancelWithRanges", testCancelWithRanges},
	{"CountDownloadAtomic", testCountDownloadAtomic},
	{"CountDownloadRanges", testCountDownloadRanges},
	{"HoldsRequestsDestructions", testHoldsRequestsDestructions},
	{"OutboxFacts", testOutboxFacts},
	{"OutboxQuarantineAlert", testOutboxQuarantineAlert},
	{"OutboxDeliveries", testOutboxDeliveries},
	{"ExpiringTransfers", testExpiringTransfers},
	{"StagedCreateReady", testStagedCreateReady},
	{"SharedCounters", testSharedCounters},
	{"RiskBaselines", testRiskBaselines},
	{"RecentUploads", testRecentUploads},
	{"RecentUploadsRace", testRecentUploadsRace},
}

// drivers are the engines the suite runs on: each returns the store of a
// data directory, the same one (database included) when dir is opened again.
var drivers = []struct {
	name string
	open func(t *testing.T) func(testing.TB, string) *Store
}{
	{"sqlite", func(*testing.T) func(testing.TB, string) *Store { return openStore }},
	{"postgres", openPostgresStore},
	{"postgres+s3", openS3Store},
}

func TestDrivers(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			open := d.open(t)
			for _, tt := range driverTests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
			}
		})
	}
}

var (
	pgOnce    sync.Once
	pgCluster *enginetest.Postgres
	pgErr     error

	s3Once   sync.Once
	s3Server *enginetest.VersityGW
	s3Err    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgCluster != nil {
		if err := pgCluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping PostgreSQL:", err)
		}
	}
	if s3Server != nil {
		if err := s3Server.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping versitygw:", err)
		}
	}
	os.Exit(code)
}

// versityGW starts the package's versitygw server once, or skips (fails
// under CI=true) when it cannot be had.
func versityGW(t testing.TB) *enginetest.VersityGW {
	t.Helper()
	if _, err := enginetest.VersityGWBin(); err != nil {
		enginetest.Missing(t, "versitygw", err)
	}
	s3Once.Do(func() { s3Server, s3Err = enginetest.StartVersityGW(context.Background()) })
	if s3Err != nil {
		t.Fatalf("start versitygw: %v", s3Err)
	}
	return s3Server
}

// s3Config returns the config of a new bucket on the package's versitygw,
// its secret key in a 0600 file in dir.
func s3Config(t testing.TB, dir string) S3Config {
	t.Helper()
	v := versityGW(t)
	bucket, err := v.NewBucket()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := v.WriteSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	return S3Config{Endpoint: v.Endpoint(), Bucket: bucket, AccessKeyID: v.AccessKey, SecretKeyFile: secret}
}

// openS3Store returns an opener of stores on PostgreSQL with the ciphertext
// on versitygw: each new data directory gets a database and a bucket of its
// own, kept for that directory.
func openS3Store(t *testing.T) func(testing.TB, string) *Store {
	pg := postgresCluster(t)
	versityGW(t)
	var mu sync.Mutex
	cfgs := map[string]Config{}
	return func(t testing.TB, dir string) *Store {
		t.Helper()
		mu.Lock()
		cfg, ok := cfgs[dir]
		if !ok {
			dsn, err := pg.NewDatabase(context.Background())
			if err != nil {
				mu.Unlock()
				t.Fatal(err)
			}
			cfg = Config{Dir: dir, Driver: DriverPostgres, Postgres: PostgresConfig{DSN: dsn}, Replica: "r1",
				Ciphertext: CiphertextS3, S3: s3Config(t, t.TempDir())}
			cfgs[dir] = cfg
		}
		mu.Unlock()
		s, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatalf("Open(postgres+s3): %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

// postgresCluster starts the package's PostgreSQL cluster once, or skips
// (fails under CI=true) when PostgreSQL is not installed.
func postgresCluster(t testing.TB) *enginetest.Postgres {
	t.Helper()
	if _, err := enginetest.PostgresBin(); err != nil {
		enginetest.Missing(t, "PostgreSQL", err)
	}
	pgOnce.Do(func() { pgCluster, pgErr = enginetest.StartPostgres(context.Background()) })
	if pgErr != nil {
		t.Fatalf("start PostgreSQL: %v", pgErr)
	}
	return pgCluster
}

// openPostgresStore returns an opener of stores on PostgreSQL: each new data
// directory gets a database of its own, kept for that directory.
func openPostgresStore(t *testing.T) func(testing.TB, string) *Store {
	pg := postgresCluster(t)
	var mu sync.Mutex
	dsns := map[string]string{}
	return func(t testing.TB, dir string) *Store {
		t.Helper()
		mu.Lock()
		dsn, ok := dsns[dir]
		if !ok {
			var err error
			if dsn, err = pg.NewDatabase(context.Background()); err != nil {
				mu.Unlock()
				t.Fatal(err)
			}
			dsns[dir] = dsn
		}
		mu.Unlock()
		return openReplica(t, dir, dsn, "r1")
	}
}

// postgresReplicas opens two replicas' stores, r1 and r2, on a fresh
// PostgreSQL database and one spool directory.
func postgresReplicas(t *testing.T) (*Store, *Store) {
	t.Helper()
	dsn, err := postgresCluster(t).NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return openReplica(t, dir, dsn, "r1"), openReplica(t, dir, dsn, "r2")
}

// openReplica opens a store on PostgreSQL at dsn with the spool in dir, as
// the named replica.
func openReplica(t testing.TB, dir, dsn, replica string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Dir: dir, Driver: DriverPostgres,
		Postgres: PostgresConfig{DSN: dsn}, Replica: replica})
	if err != nil {
		t.Fatalf("Open(postgres): %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPostgresSchemaInStep: every SQLite migration has its PostgreSQL twin.
func TestPostgresSchemaInStep(t *testing.T) {
	if len(pgMigrations) != len(migrations) {
		t.Fatalf("%d PostgreSQL migrations for %d SQLite ones: add the missing ones to pgMigrations (postgres.go)", len(pgMigrations), len(migrations))
	}
}

// TestConfigDrivers: a config that names a driver wrongly or half is refused
// at Open with ErrInvalid, before anything is opened.
func TestConfigDrivers(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"unknown driver", Config{Dir: dir, Driver: "mysql"}},
		{"postgres without dsn", Config{Dir: dir, Driver: DriverPostgres, Replica: "r1"}},
		{"postgres without replica", Config{Dir: dir, Driver: DriverPostgres, Postgres: PostgresConfig{DSN: "postgres://x@127.0.0.1:1/db"}}},
		{"bad replica name", Config{Dir: dir, Driver: DriverPostgres, Postgres: PostgresConfig{DSN: "postgres://x@127.0.0.1:1/db"}, Replica: "r/1"}},
		{"dsn without postgres", Config{Dir: dir, Postgres: PostgresConfig{DSN: "postgres://x@127.0.0.1:1/db"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Open(t.Context(), tt.cfg); !errors.Is(err, ErrInvalid) {
				if s != nil {
					s.Close()
				}
				t.Errorf("Open(%+v) = %v, want ErrInvalid", tt.cfg, err)
			}
		})
	}
}

// testStagedCreateReady: ciphertext the gateway stages itself (SFTP ingest)
// becomes a ready transfer in one step, stored where every ciphertext is
// (the spool, or the bucket), its staging file gone; an unstaged file leaves
// nothing behind.
func testStagedCreateReady(t *testing.T, openStore func(testing.TB, string) *Store) {
	dir := t.TempDir()
	s := openStore(t, dir)
	content := randomBytes(t, 3<<20+17)
	f, err := s.Stage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tr := newTransfer(t, alice, content, bob)
	if err := s.CreateReady(t.Context(), tr, f.Name(), t0); err != nil {
		t.Fatalf("CreateReady: %v", err)
	}
	if _, err := os.Stat(f.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the staging file outlived CreateReady: %v", err)
	}
	if got, err := s.Transfer(t.Context(), tr.ID); err != nil || got.State != StateReady || got.Offset != int64(len(content)) {
		t.Fatalf("after CreateReady: %+v, %v", got, err)
	}
	assertContent(t, s, tr.ID, content)

	g, err := s.Stage()
	if err != nil {
		t.Fatal(err)
	}
	g.Write(content[:100])
	g.Close()
	if err := s.Unstage(g.Name()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CleanStaging(); err != nil || n != 0 {
		t.Errorf("CleanStaging after Unstage = %d, %v; want 0", n, err)
	}
	if err := s.DeleteTransfer(t.Context(), tr.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stats(t.Context()); err != nil || st.SpoolFiles != 0 {
		t.Errorf("after DeleteTransfer: %+v, %v; want no ciphertext left", st, err)
	}
}
