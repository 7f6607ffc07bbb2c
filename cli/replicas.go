package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"
)

// connectAny connects to the first of addrs — replicas of one gateway — that
// answers, and returns its address. An address that cannot be reached is
// skipped with a note on verbose; a refused certificate is returned at once,
// since every replica would refuse it. A send or receive cut short by a
// replica that went away resumes, run again, at the durable offset on the
// next replica that answers.
func connectAny(ctx context.Context, addrs []string, mode string, tc *tls.Config, verbose io.Writer) (string, roundTripper, string, error) {
	var lastErr error
	for i, addr := range addrs {
		rt, name, err := connect(ctx, addr, mode, tc, verbose)
		if err == nil && name == TransportTCP && len(addrs) > 1 {
			// The TCP transport dials lazily: make sure this replica is up
			// before settling on it.
			if err = probeTCP(ctx, addr); err != nil {
				rt.Close()
			}
		}
		if err == nil {
			return addr, rt, name, nil
		}
		if handshakeError(err) != nil || ctx.Err() != nil || i == len(addrs)-1 {
			return "", nil, "", err
		}
		lastErr = err
		if verbose != nil {
			fmt.Fprintf(verbose, "gateway %s unreachable (%v); trying %s\n", addr, err, addrs[i+1])
		}
	}
	return "", nil, "", lastErr
}

// probeTCP checks that addr accepts TCP connections.
func probeTCP(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway %s: %w", addr, err)
	}
	return conn.Close()
}
