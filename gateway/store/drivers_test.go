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
	{"SharedCounters", testSharedCounters},
}

// drivers are the engines the suite runs on: each returns the store of a
// data directory, the same one (database included) when dir is opened again.
var drivers = []struct {
	name string
	open func(t *testing.T) func(testing.TB, string) *Store
}{
	{"sqlite", func(*testing.T) func(testing.TB, string) *Store { return openStore }},
	{"postgres", openPostgresStore},
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
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgCluster != nil {
		if err := pgCluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping PostgreSQL:", err)
		}
	}
	os.Exit(code)
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
