package main

import (
	"context"
	"fmt"

	"github.com/lexgate/lexgate/internal/engines"
)

// startEngines starts the engines a cluster runs on, private, in the demo's
// directory on loopback ports: PostgreSQL for metadata (with production's
// fsync=on), MariaDB for the audit log, versitygw (S3) for the ciphertext;
// and makes the database, the audit database and the bucket the replicas
// share.
func (d *demo) startEngines(ctx context.Context) error {
	var err error
	if d.pg, err = engines.StartPostgres(ctx, engines.InDir(d.dir), engines.Settings("max_connections=300", "fsync=on")); err != nil {
		return fmt.Errorf("PostgreSQL (make deb-deps installs it): %w", err)
	}
	if d.pgDSN, err = d.pg.NewDatabase(ctx); err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	fmt.Fprintf(d.out, "     PostgreSQL on 127.0.0.1:%d\n", d.pg.Port())
	if d.my, err = engines.StartMariaDB(ctx, engines.InDir(d.dir)); err != nil {
		return fmt.Errorf("MariaDB (make deb-deps installs it): %w", err)
	}
	if d.myDSN, err = d.my.NewDatabase(ctx); err != nil {
		return fmt.Errorf("MariaDB: %w", err)
	}
	fmt.Fprintf(d.out, "     MariaDB on 127.0.0.1:%d\n", d.my.Port())
	opts := []engines.Option{engines.InDir(d.dir)}
	if d.s3Bin != "" {
		opts = append(opts, engines.Binary(d.s3Bin))
	}
	if d.s3, err = engines.StartVersityGW(ctx, opts...); err != nil {
		return fmt.Errorf("versitygw (make versitygw builds it): %w", err)
	}
	if d.bucket, err = d.s3.NewBucket(); err != nil {
		return fmt.Errorf("versitygw: %w", err)
	}
	if d.s3Secret, err = d.s3.WriteSecret(d.dir); err != nil {
		return fmt.Errorf("versitygw: %w", err)
	}
	fmt.Fprintf(d.out, "     versitygw (S3, the ciphertext) on %s, bucket %s\n", d.s3.Addr(), d.bucket)
	return nil
}
