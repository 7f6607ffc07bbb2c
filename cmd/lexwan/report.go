package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is a result's MB/s, "≤" when it timed out.
func (r result) figure() string {
	s := fmt.Sprintf("%.1f MB/s in %v", r.MBps, r.Wall.Round(100*time.Millisecond))
	if r.TimedOut {
		s = fmt.Sprintf("≤%.2f MB/s (stopped after %v)", r.MBps, r.Wall.Round(time.Second))
	}
	return s
}

// emuCost is the forwarder's CPU as a share of one core, and per MB/s carried.
func (r result) emuCost() string {
	if r.Wall <= 0 || r.Carried == 0 {
		return "-"
	}
	share := r.EmuCPU.Seconds() / r.Wall.Seconds()
	mbps := float64(r.Carried) / 1e6 / r.Wall.Seconds()
	return fmt.Sprintf("%.0f%% (%.2f%%/MB/s)", 100*share, 100*share/mbps)
}

// base is the sftp figure a row compares with, and whether sftp timed out (its
// figure is then an upper bound).
func (p *profileReport) base(r result) (float64, bool) {
	want := rowSFTPGet
	if r.Up {
		want = rowSFTPPut
	}
	for _, x := range p.Rows {
		if x.Row == want {
			return x.MBps, x.TimedOut
		}
	}
	return 0, false
}

// ratio is r's figure over sftp's: "≤" when r timed out, "≥" when sftp did.
func (p *profileReport) ratio(r result) string {
	b, bTimedOut := p.base(r)
	if b == 0 {
		return "-"
	}
	s := fmt.Sprintf("%.2f×", r.MBps/b)
	switch {
	case r.TimedOut && bTimedOut:
		s = "~" + s
	case r.TimedOut:
		s = "≤" + s
	case bTimedOut:
		s = "≥" + s
	}
	return s
}

// write prints one profile's table.
func (p *profileReport) write(w io.Writer) {
	fmt.Fprintf(w, "\nprofile %s: %v\n", p.P.Name, p.P)
	want := 1 - (1-p.P.Loss)*(1-p.P.Loss)
	fmt.Fprintf(w, "emulator check (UDP echo): %v; configured RTT %v, round-trip loss %.2f%%\n", p.Probe, p.P.RTT, 100*want)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "what\tMB/s\t× sftp\ttime\temulator CPU\t")
	for _, r := range p.Rows {
		mbps := fmt.Sprintf("%.1f", r.MBps)
		if r.TimedOut {
			mbps = fmt.Sprintf("≤%.2f", r.MBps)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t\n", r.Row, mbps, p.ratio(r), r.Wall.Round(100*time.Millisecond), r.emuCost())
	}
	tw.Flush()
	for _, r := range p.Rows {
		if r.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", r.Row, r.Note)
		}
	}
}

// writeSummary prints MB/s (ratio to sftp) per row and profile, and the targets.
func writeSummary(w io.Writer, reps []*profileReport, o options) {
	fmt.Fprintf(w, "\nsummary: %s each way, MB/s (× sftp); MB = 10^6 bytes\n", humanBytes(o.size))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"what"}
	for _, r := range reps {
		head = append(head, r.P.Name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	if len(reps) > 0 {
		for i, row := range reps[0].Rows {
			cells := []string{row.Row}
			for _, r := range reps {
				if i >= len(r.Rows) {
					cells = append(cells, "-")
					continue
				}
				x := r.Rows[i]
				mbps := fmt.Sprintf("%.1f", x.MBps)
				if x.TimedOut {
					mbps = fmt.Sprintf("≤%.2f", x.MBps)
				}
				cells = append(cells, fmt.Sprintf("%s (%s)", mbps, r.ratio(x)))
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\ntargets for lex send (auto):")
	for _, r := range reps {
		want := 1.0
		switch r.P.Name {
		case "150ms":
			want = 2.5
		case "150ms-0.5%":
			want = 4
		}
		for _, x := range r.Rows {
			if x.Row != rowSend("auto") {
				continue
			}
			got := 0.0
			b, bTimedOut := r.base(x)
			if b > 0 {
				got = x.MBps / b
			}
			verdict := "met"
			if got < want {
				verdict = "NOT met"
			}
			if bTimedOut {
				verdict += " (sftp was stopped: the ratio is a lower bound)"
			}
			fmt.Fprintf(w, "  %-14s ≥ %.1f× sftp: %.2f× — %s\n", r.P.Name, want, got, verdict)
		}
	}
	fmt.Fprintln(w, "\n(figures from one run; on a shared machine they are disturbed by other work)")
}
