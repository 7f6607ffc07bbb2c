package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// maxErrors is how many error messages a class keeps for the report.
const maxErrors = 5

// stats are one class's results, shared by its senders.
type stats struct {
	c         class
	mu        sync.Mutex
	lat       []time.Duration
	errors    int
	cuts      int
	notRecv   int
	firstErrs []string
}

func (s *stats) done(d time.Duration) { s.mu.Lock(); s.lat = append(s.lat, d); s.mu.Unlock() }
func (s *stats) cut()                 { s.mu.Lock(); s.cuts++; s.mu.Unlock() }
func (s *stats) unreceived()          { s.mu.Lock(); s.notRecv++; s.mu.Unlock() }

func (s *stats) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors++
	if len(s.firstErrs) < maxErrors {
		s.firstErrs = append(s.firstErrs, err.Error())
	}
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// recvStats are the receivers' results.
type recvStats struct {
	mu        sync.Mutex
	ok        int
	errors    int
	firstErrs []string
}

func (r *recvStats) add(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.ok++
		return
	}
	r.errors++
	if len(r.firstErrs) < maxErrors {
		r.firstErrs = append(r.firstErrs, err.Error())
	}
}

// report is what a run against one backend measured.
type report struct {
	o          *options
	backend    string
	pooled     bool // sockets not judged for leaks (see fdCounts.leaks)
	gateways   []*gatewayReport
	classes    []*stats
	recv       recvStats
	elapsed    time.Duration
	spoolFiles int
	spoolBytes int64
}

// gatewayReport is one gateway process's figures.
type gatewayReport struct {
	name      string
	pid       int
	hwm       int64 // peak RSS (VmHWM), bytes
	fdsBefore fdCounts
	fdsAfter  fdCounts
}

func (r *report) class(c class) *stats {
	s := &stats{c: c}
	r.classes = append(r.classes, s)
	return s
}

// errors counts failed transfers, sends and receives.
func (r *report) errors() int {
	n := r.recv.errors
	for _, s := range r.classes {
		n += s.errors
	}
	return n
}

func (r *report) leaked() bool {
	for _, g := range r.gateways {
		if g.fdsAfter.leaks(g.fdsBefore, !r.pooled) {
			return true
		}
	}
	return false
}

// ok: no errors and no descriptor leak.
func (r *report) ok() bool { return r.errors() == 0 && !r.leaked() }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// describe names the backend in a line.
func (r *report) describe() string {
	if r.backend == backendCluster {
		return fmt.Sprintf("%d lexgate replicas on PostgreSQL + MariaDB + versitygw (S3)", len(r.gateways))
	}
	return "one lexgate on the embedded default (SQLite, spool, audit files)"
}

// perSecond is n per second of the run.
func (r *report) perSecond(n int) float64 { return float64(n) / r.elapsed.Seconds() }

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "lexload [%s]: %v of load on %s, transport %s, chunks of %s, %d receivers\n",
		r.backend, r.elapsed.Round(time.Millisecond), r.describe(), r.o.transport, mib(r.o.chunk), r.o.receivers)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\tsenders\tbundle\tcompleted\ttransfers/s\terrors\tcut at end\tp50\tp99\tMB/s\t")
	for _, s := range r.classes {
		if s.c.senders == 0 {
			continue
		}
		slices.Sort(s.lat)
		var bytes int64 = int64(len(s.lat)) * s.c.size
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%.2f\t%d\t%d\t%v\t%v\t%.1f\t\n", s.c.name, s.c.senders, mib(s.c.size), len(s.lat),
			r.perSecond(len(s.lat)), s.errors, s.cuts, percentile(s.lat, 50).Round(time.Millisecond), percentile(s.lat, 99).Round(time.Millisecond),
			float64(bytes)/1e6/r.elapsed.Seconds())
	}
	tw.Flush()
	fmt.Fprintln(w, "latency: from creating the transfer to the gateway acknowledging its last byte")
	notRecv := 0
	for _, s := range r.classes {
		notRecv += s.notRecv
	}
	fmt.Fprintf(w, "received: %d downloaded, SHA-256 checked and acknowledged (then purged), %d errors, %d completed too late to receive\n", r.recv.ok, r.recv.errors, notRecv)
	for _, g := range r.gateways {
		leak := "no leak"
		if g.fdsAfter.leaks(g.fdsBefore, !r.pooled) {
			leak = "LEAK"
		}
		b, a := g.fdsBefore, g.fdsAfter
		sockets := ""
		if r.pooled {
			sockets = " (database pools included, not judged)"
		}
		fmt.Fprintf(w, "%s (pid %d): peak RSS (VmHWM) %s; open file descriptors before the clients → after they left (%s): total %d → %d; sockets %d → %d%s, spool files %d → %d, audit body segments %d → %d (one stays open), other %d → %d; SQLite's %d → %d (its pool, not judged)\n",
			g.name, g.pid, mib(g.hwm), leak, b.Total, a.Total, b.Sockets, a.Sockets, sockets, b.Spool, a.Spool, b.Bodies, a.Bodies, b.Other, a.Other, b.Database, a.Database)
	}
	fmt.Fprintf(w, "spool at the end: %d files, %s (uploads cut by the end of the run, transfers not yet received)\n",
		r.spoolFiles, mib(r.spoolBytes))
	for _, s := range r.classes {
		for _, e := range s.firstErrs {
			fmt.Fprintf(w, "error (%s): %s\n", s.c.name, e)
		}
	}
	for _, e := range r.recv.firstErrs {
		fmt.Fprintf(w, "error (receive): %s\n", e)
	}
	if r.errors() == 0 {
		fmt.Fprintln(w, "errors: 0")
	}
}

// printSummary sets the backends' figures side by side.
func printSummary(w io.Writer, rs []*report) {
	fmt.Fprintln(w, "lexload: backends side by side (same load, same machine, one after the other)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\tclass\ttransfers/s\tp50\tp99\terrors\tpeak RSS per gateway\t")
	for _, r := range rs {
		var rss []string
		for _, g := range r.gateways {
			rss = append(rss, g.name+" "+mib(g.hwm))
		}
		for _, s := range r.classes {
			if s.c.senders == 0 {
				continue
			}
			slices.Sort(s.lat)
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%v\t%v\t%d\t%s\t\n", r.backend, s.c.name, r.perSecond(len(s.lat)),
				percentile(s.lat, 50).Round(time.Millisecond), percentile(s.lat, 99).Round(time.Millisecond), s.errors, strings.Join(rss, ", "))
		}
		fmt.Fprintf(tw, "%s\treceive\t%.2f\t\t\t%d\t\t\n", r.backend, r.perSecond(r.recv.ok), r.recv.errors)
	}
	tw.Flush()
}
