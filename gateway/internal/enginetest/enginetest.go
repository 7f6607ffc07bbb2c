// Package enginetest is the test side of internal/engines, which starts the
// real engines lexgate's cluster backends run on (PostgreSQL, MariaDB,
// versitygw): it re-exports that package's starters for tests that share
// one engine across tests, and adds helpers that start an engine for one
// test and stop it at the test's end.
//
// When an engine's programs are missing, [Missing] reports it: a test
// skips, except under CI=true, where it fails, since CI installs them (the
// Makefile's deb-deps).
package enginetest

import (
	"context"
	"os"
	"testing"

	"github.com/lexgate/lexgate/internal/engines"
)

// Postgres is a private PostgreSQL cluster; see [engines.Postgres].
type Postgres = engines.Postgres

// MariaDB is a private MariaDB server; see [engines.MariaDB].
type MariaDB = engines.MariaDB

// VersityGW is a private versitygw S3 server; see [engines.VersityGW].
type VersityGW = engines.VersityGW

// VersityGWVersion is the versitygw release the tests run.
const VersityGWVersion = engines.VersityGWVersion

// PostgresBin finds the PostgreSQL server programs; see [engines.PostgresBin].
func PostgresBin() (string, error) { return engines.PostgresBin() }

// MariaDBBin finds the MariaDB server programs; see [engines.MariaDBBin].
func MariaDBBin() (server, install string, err error) { return engines.MariaDBBin() }

// VersityGWBin finds or builds versitygw; see [engines.VersityGWBin].
func VersityGWBin() (string, error) { return engines.VersityGWBin() }

// StartPostgres starts a PostgreSQL cluster with the test defaults
// (fsync=off) that the caller stops; see [engines.StartPostgres].
func StartPostgres(ctx context.Context) (*Postgres, error) { return engines.StartPostgres(ctx) }

// StartMariaDB starts a MariaDB server that the caller stops; see
// [engines.StartMariaDB].
func StartMariaDB(ctx context.Context) (*MariaDB, error) { return engines.StartMariaDB(ctx) }

// StartVersityGW starts a versitygw server that the caller stops; see
// [engines.StartVersityGW].
func StartVersityGW(ctx context.Context) (*VersityGW, error) { return engines.StartVersityGW(ctx) }

// Missing skips t because an engine's programs are not installed, or fails
// it under CI=true, where they must be.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true (make deb-deps installs it): %v", what, err)
	}
	t.Skipf("%s not available (make deb-deps installs it): %v", what, err)
}

// NewPostgres starts a PostgreSQL cluster for t and stops it at t's end;
// it skips t (fails it under CI=true) where PostgreSQL is missing.
func NewPostgres(t testing.TB) *Postgres {
	t.Helper()
	_, err := engines.PostgresBin()
	return start(t, "PostgreSQL", err, engines.StartPostgres)
}

// NewMariaDB starts a MariaDB server for t, with opts (where it lives, its
// settings), and stops it at t's end; it skips t (fails it under CI=true)
// where MariaDB is missing.
func NewMariaDB(t testing.TB, opts ...engines.Option) *MariaDB {
	t.Helper()
	_, _, err := engines.MariaDBBin()
	return start(t, "MariaDB", err, func(ctx context.Context, more ...engines.Option) (*MariaDB, error) {
		return engines.StartMariaDB(ctx, append(more, opts...)...)
	})
}

// NewVersityGW starts a versitygw server for t and stops it at t's end; it
// skips t (fails it under CI=true) where versitygw cannot be found or
// built.
func NewVersityGW(t testing.TB) *VersityGW {
	t.Helper()
	_, err := engines.VersityGWBin()
	return start(t, "versitygw", err, engines.StartVersityGW)
}

// start reports the engine what as missing if binErr is set, else starts it
// with the test defaults and stops it at t's end.
func start[E interface{ Stop() error }](t testing.TB, what string, binErr error,
	startFn func(context.Context, ...engines.Option) (E, error)) E {
	t.Helper()
	if binErr != nil {
		Missing(t, what, binErr)
	}
	e, err := startFn(context.Background())
	if err != nil {
		t.Fatalf("start %s: %v", what, err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop %s: %v", what, err)
		}
	})
	return e
}
