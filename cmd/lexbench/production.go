package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// The production case: a legal production is many small files, not one large
// one. -files N (20,000 by default) files of -file-size bytes (50 KB) are made
// in 20 folders, then sent and received with lex over TCP and put and got with
// sftp -r, side by side.

// Row names of the production case.
const (
	rowProdPut = "sftp put -r (production)"
	rowProdGet = "sftp get -r (production)"
	rowProdSnd = "lex send tcp (production)"
	rowProdRcv = "lex receive tcp (production)"
)

// prodFolders is how many folders the production's files are spread over.
const prodFolders = 20

// productionRows are the rows of the production case and their baselines.
func productionRows() [][2]string {
	return [][2]string{{rowProdPut, ""}, {rowProdGet, ""}, {rowProdSnd, rowProdPut}, {rowProdRcv, rowProdGet}}
}

// benchProduction makes the production, then times sftp put -r and get -r of
// it against a throwaway sshd, and lex send and receive through a fresh TCP
// gateway.
//
// Every copy made (sftp's, lex's) stays until the end of the case, when all
// are removed: on ext4 without a journal the inode allocator skips, one by
// one, every inode freed in the last minute (six while its inode table block
// is not written back: recently_deleted in fs/ext4/ialloc.c), so files
// created just after 20,000 were deleted cost several times the CPU (a perf
// profile of lex receive: over half of its CPU in recently_deleted and its
// buffer lookups), and whichever command followed a removal lost. The copies
// take -files × -file-size bytes each, 3 per run.
func (b *bench) benchProduction(ctx context.Context) error {
	root := b.path("input", "production")
	if err := writeProduction(root, b.opt.files, b.opt.fileSize); err != nil {
		return fmt.Errorf("writing the production: %w", err)
	}
	total := int64(b.opt.files) * b.opt.fileSize
	b.rep.ProductionFiles, b.rep.ProductionBytes = b.opt.files, total
	b.logf("wrote %d files of %s (%s) to %s", b.opt.files, humanBytes(b.opt.fileSize), humanBytes(total), root)

	s, err := b.startSSHDIn(ctx, "sshd-production")
	if err != nil {
		return err
	}
	srv := s.cpu()
	var copies []string
	defer func() {
		for _, c := range copies {
			os.RemoveAll(c)
		}
	}()
	for i := range b.opt.runs {
		remote, local := b.path("sftp", fmt.Sprintf("remote-production-%d", i)), b.path("sftp", fmt.Sprintf("local-production-%d", i))
		copies = append(copies, remote, local)
		r, err := b.timedSFTP(rowProdPut, srv, func() (execResult, error) {
			return s.sftp(ctx, fmt.Sprintf("put -r %s %s", quote(root), quote(remote)))
		})
		if err != nil {
			return fmt.Errorf("sftp put -r: %w", err)
		}
		if err := checkTree(remote, b.opt.files, total); err != nil {
			return fmt.Errorf("sftp put -r: %w", err)
		}
		b.recordSize(rowProdPut, i, r.wall, r.cpu, total)
		r, err = b.timedSFTP(rowProdGet, srv, func() (execResult, error) {
			return s.sftp(ctx, fmt.Sprintf("get -r %s %s", quote(remote), quote(local)))
		})
		if err != nil {
			return fmt.Errorf("sftp get -r: %w", err)
		}
		if err := checkTree(local, b.opt.files, total); err != nil {
			return fmt.Errorf("sftp get -r: %w", err)
		}
		b.recordSize(rowProdGet, i, r.wall, r.cpu, total)
	}
	if err := s.stop(10 * time.Second); err != nil {
		return err
	}

	pki := b.path("pki")
	g, err := b.startGateway(ctx, b.path("gateway-production"), pki)
	if err != nil {
		return err
	}
	b.logf("gateway for the production on %s (pid %d)", g.addr, g.pid())
	aliceCfg, err := b.clientConfig(g, "alice", "production", pki, aliceSVID)
	if err != nil {
		return err
	}
	teamCfg, err := b.clientConfig(g, "review-team", "production", pki, teamSVID)
	if err != nil {
		return err
	}
	if _, err := runTimed(ctx, "", b.lex, "--config", teamCfg, "--transport", "tcp", "register"); err != nil {
		return err
	}
	stats := &gatewayStats{Transport: "tcp, production"}
	b.rep.Gateways = append(b.rep.Gateways, stats)
	for i := range b.opt.runs {
		settle()
		g.mon.reset()
		cpu0, _ := g.mon.cpu()
		r, err := runTimed(ctx, "", b.lex, "--config", aliceCfg, "--transport", "tcp",
			"send", "--json", "--to", team, "--matter", matter, root)
		if err != nil {
			return err
		}
		id, err := sentID(r.stdout, "tcp")
		if err != nil {
			return err
		}
		b.gatewayPhase(g, rowProdSnd, &stats.SendPeakRSSMiB, cpu0)
		b.recordSize(rowProdSnd, i, r.wall, r.cpu, total)
		out := b.path("received", fmt.Sprintf("production-%d", i))
		copies = append(copies, out)
		settle()
		g.mon.reset()
		cpu0, _ = g.mon.cpu()
		r, err = runTimed(ctx, "", b.lex, "--config", teamCfg, "--transport", "tcp", "receive", id, "-o", out)
		if err != nil {
			return err
		}
		b.gatewayPhase(g, rowProdRcv, &stats.ReceivePeakRSSMiB, cpu0)
		if err := checkTree(out, b.opt.files, total); err != nil {
			return fmt.Errorf("lex receive: %w", err)
		}
		b.recordSize(rowProdRcv, i, r.wall, r.cpu, total)
		if _, err := runTimed(ctx, "", b.lex, "--config", teamCfg, "--transport", "tcp", "ack", id); err != nil {
			return err
		}
	}
	hwm, err := g.mon.hwm()
	if err != nil {
		return fmt.Errorf("gateway peak RSS: %w", err)
	}
	stats.PeakRSSMiB = max(mib(hwm), stats.SendPeakRSSMiB, stats.ReceivePeakRSSMiB)
	return g.stop()
}

// writeProduction writes files random files of size bytes under root, spread
// over prodFolders folders.
func writeProduction(root string, files int, size int64) error {
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	src := rand.NewChaCha8(seed)
	buf := make([]byte, size)
	for i := range files {
		dir := filepath.Join(root, fmt.Sprintf("vol-%03d", i%prodFolders))
		if i < prodFolders {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(src, buf); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("doc-%06d.bin", i)), buf, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// checkTree fails unless root holds files regular files of total bytes in all.
func checkTree(root string, files int, total int64) error {
	var n int
	var bytes int64
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n++
		bytes += fi.Size()
		return nil
	})
	if err != nil {
		return err
	}
	if n != files || bytes != total {
		return fmt.Errorf("%s holds %d files of %d bytes, want %d of %d", root, n, bytes, files, total)
	}
	return nil
}

// recordSize is record for a row whose rate is of size bytes, not the test file's.
func (b *bench) recordSize(row string, run int, wall, cpu time.Duration, size int64) {
	r := b.rep.row(row)
	r.size = size
	r.walls = append(r.walls, wall)
	r.cpus = append(r.cpus, cpu)
	b.logf("%-28s run %d/%d: %7.2f s %8.1f MB/s", row, run+1, b.opt.runs, wall.Seconds(), mbps(size, wall))
}

// sentID is the transfer ID in the output of "lex send --json" over transport t.
func sentID(stdout, t string) (string, error) {
	var res sendResult
	if err := json.Unmarshal([]byte(lastJSON(stdout)), &res); err != nil || res.ID == "" {
		return "", fmt.Errorf("lex send printed no transfer id (%v): %q", err, stdout)
	}
	if res.Transport != t {
		return "", fmt.Errorf("lex send used %q, not %q", res.Transport, t)
	}
	return res.ID, nil
}
