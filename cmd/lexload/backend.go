package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lexgate/lexgate/gateway/store"
	"github.com/lexgate/lexgate/internal/engines"
)

// Backends lexload runs against (-backends).
const (
	// backendEmbedded is one lexgate on the embedded default: SQLite, a
	// spool directory, the audit log in files.
	backendEmbedded = "embedded"
	// backendCluster is -replicas lexgate replicas on the cluster backends:
	// metadata in PostgreSQL, the audit log in MariaDB (tessera's MySQL
	// driver), the ciphertext in one bucket on versitygw (S3).
	backendCluster = "cluster"
)

// backend is the gateway side of a run: its processes and where their data is.
type backend struct {
	name  string
	gws   []*gateway
	names []string // each gateway's name: "lexgate", or r1, r2, …
	data  []string // each gateway's data directory
	spool string   // the spool directory (shared by a cluster's replicas)
	// pooled: the gateways hold database connections in pools that grow
	// under load, so their sockets are shown but not judged for leaks.
	pooled bool
	stops  []func() error // engines to stop, last first
}

// addrs lists the gateways' API addresses.
func (b *backend) addrs() []string {
	out := make([]string, len(b.gws))
	for i, g := range b.gws {
		out[i] = g.addr
	}
	return out
}

// close kills the gateways and stops the engines.
func (b *backend) close() error {
	for _, g := range b.gws {
		g.kill()
	}
	var errs []error
	for i := len(b.stops) - 1; i >= 0; i-- {
		errs = append(errs, b.stops[i]())
	}
	return errors.Join(errs...)
}

// startBackend starts the gateways of backend kind under dir, on the PKI in pki.
func startBackend(ctx context.Context, o *options, kind, dir, pki string, log io.Writer) (*backend, error) {
	dir = filepath.Join(dir, kind)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	b := &backend{name: kind}
	switch kind {
	case backendEmbedded:
		data := filepath.Join(dir, "data")
		g, err := startGateway(o.lexgate, gatewayConfig(pki, data), filepath.Join(dir, "lexgate.yaml"), filepath.Join(dir, "lexgate.log"))
		if err != nil {
			return nil, err
		}
		b.gws, b.names, b.data, b.spool = []*gateway{g}, []string{"lexgate"}, []string{data}, filepath.Join(data, "spool")
		return b, nil
	case backendCluster:
		if err := b.startCluster(ctx, o, dir, pki, log); err != nil {
			b.close()
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("backend %q: want %s or %s", kind, backendEmbedded, backendCluster)
}

// startCluster starts PostgreSQL, MariaDB and versitygw, private, on
// loopback ports, and o.replicas replicas sharing them: metadata in
// PostgreSQL, the audit log in MariaDB, the ciphertext in one bucket.
func (b *backend) startCluster(ctx context.Context, o *options, dir, pki string, log io.Writer) error {
	// Production settings where the test defaults differ: durable commits;
	// connections for every upload's lock and statements on every replica
	// (docs/scale-out.md sizes max_connections so).
	pg, err := engines.StartPostgres(ctx, engines.Settings("fsync=on", fmt.Sprintf("max_connections=%d", 100+4*o.replicas*(o.small.senders+o.large.senders+o.receivers)/o.replicas)))
	if err != nil {
		return fmt.Errorf("PostgreSQL (make deb-deps installs it): %w", err)
	}
	b.stops = append(b.stops, pg.Stop)
	my, err := engines.StartMariaDB(ctx)
	if err != nil {
		return fmt.Errorf("MariaDB (make deb-deps installs it): %w", err)
	}
	b.stops = append(b.stops, my.Stop)
	pgDSN, err := pg.NewDatabase(ctx)
	if err != nil {
		return err
	}
	myDSN, err := my.NewDatabase(ctx)
	if err != nil {
		return err
	}
	s3, err := engines.StartVersityGW(ctx)
	if err != nil {
		return fmt.Errorf("versitygw (make versitygw builds it): %w", err)
	}
	b.stops = append(b.stops, s3.Stop)
	bucket, err := s3.NewBucket()
	if err != nil {
		return err
	}
	secret, err := s3.WriteSecret(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "lexload: cluster engines: PostgreSQL on 127.0.0.1:%d, MariaDB on 127.0.0.1:%d, versitygw on %s\n", pg.Port(), my.Port(), s3.Addr())
	b.pooled = true
	b.spool = filepath.Join(dir, "spool")
	for i := range o.replicas {
		name := fmt.Sprintf("r%d", i+1)
		data := filepath.Join(dir, name)
		c := gatewayConfig(pki, data)
		c.Store.Driver, c.Store.Replica = store.DriverPostgres, name
		c.Store.Postgres.DSN = pgDSN
		// The ciphertext: one bucket on the S3-compatible server, shared by
		// every replica (the spool directory only stages).
		c.Store.SpoolDir = b.spool
		c.Store.Ciphertext = store.CiphertextS3
		c.Store.S3 = store.S3Config{Endpoint: s3.Endpoint(), Bucket: bucket, AccessKeyID: s3.AccessKey, SecretKeyFile: secret}
		c.Audit.MySQL.DSN, c.Audit.KeyFile = myDSN, filepath.Join(dir, "audit.key")
		g, err := startGateway(o.lexgate, c, filepath.Join(dir, name+".yaml"), filepath.Join(dir, name+".log"))
		if err != nil {
			return fmt.Errorf("replica %s: %w", name, err)
		}
		b.gws, b.names, b.data = append(b.gws, g), append(b.names, name), append(b.data, data)
	}
	return nil
}

// parseBackends reads -backends: a comma-separated list of backends.
func parseBackends(s string) ([]string, error) {
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if k != backendEmbedded && k != backendCluster {
			return nil, fmt.Errorf("-backends %q: %q is neither %s nor %s", s, k, backendEmbedded, backendCluster)
		}
		out = append(out, k)
	}
	return out, nil
}
