package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Row names, in table order.
const (
	rowAgeX25519 = "age encrypt X25519"
	rowAgePQ     = "age encrypt PQ"
	rowSFTPPut   = "sftp put"
	rowSFTPGet   = "sftp get"
)

func rowSend(t string) string     { return "lex send " + t }
func rowUpload(t string) string   { return "  upload only " + t + "*" }
func rowReceive(t string) string  { return "lex receive " + t }
func rowDownload(t string) string { return "  download only " + t + "*" }

// Performance targets from the issue.
const (
	targetTCPSend  = 1.5 // lex send tcp ≥ 1.5× sftp put
	targetQUICSend = 0.7 // lex send quic ≥ 0.7× sftp put
	targetRSSMiB   = 150 // gateway peak RSS < 150 MiB
	// targetTCPReceive: lex receive tcp ≥ 0.9× sftp get.
	targetTCPReceive = 0.9
)

// report is what a bench run found; it is printed as a table or as JSON.
type report struct {
	SizeBytes int64  `json:"size_bytes"`
	Runs      int    `json:"runs"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	SSHCipher string `json:"ssh_cipher,omitempty"`
	// GetCaches are the page-cache states the gets of -sftp-front were
	// measured in (see pagecache.go).
	GetCaches         []string        `json:"get_caches,omitempty"`
	LoadBefore        string          `json:"load_average_before"`
	LoadAfter         string          `json:"load_average_after"`
	Rows              []*row          `json:"rows"`
	Gateways          []*gatewayStats `json:"gateways"`
	GatewayPeakRSSMiB float64         `json:"gateway_peak_rss_mib"`
	// ProductionFiles and ProductionBytes describe the production case (many
	// small files), when it ran.
	ProductionFiles int   `json:"production_files,omitempty"`
	ProductionBytes int64 `json:"production_bytes,omitempty"`
	// Floors are the CPU floors of the pieces of a transfer on this machine;
	// Budgets each end's measured CPU beside the sum of its floors.
	Floors  []floor     `json:"cpu_floors,omitempty"`
	Budgets []endBudget `json:"cpu_budgets,omitempty"`
	// Ceilings are the ratios to sftp that lex could reach on this machine's
	// cores, from the CPU both ends of each spend.
	Ceilings []ceiling `json:"ceilings,omitempty"`
	Targets  []target  `json:"targets"`
	Notes    []string  `json:"notes"`

	byName map[string]*row
}

// row is one measurement: the median over the runs.
type row struct {
	Name              string    `json:"name"`
	Seconds           float64   `json:"seconds"`
	MBps              float64   `json:"mb_per_s"`
	Baseline          string    `json:"baseline,omitempty"`
	Ratio             float64   `json:"ratio,omitempty"`
	ClientCPUSeconds  float64   `json:"client_cpu_seconds,omitempty"`
	GatewayCPUSeconds float64   `json:"gateway_cpu_seconds,omitempty"`
	RunSeconds        []float64 `json:"run_seconds"`
	// ResidentPercent is, for a get of -sftp-front, the share of the served
	// file in the page cache just before each run's get; DirtyMiB the
	// system's dirty and under-writeback page cache then.
	ResidentPercent []float64 `json:"resident_percent,omitempty"`
	DirtyMiB        []float64 `json:"dirty_mib,omitempty"`
	// With -sftp-front, GatewayCPUSeconds is the server's (the gateway's, or
	// sshd's and its session's) and OtherCPUSeconds, per run, the CPU time
	// the rest of the machine used during the command (StealSeconds: taken
	// by the hypervisor).
	OtherCPUSeconds []float64 `json:"other_cpu_seconds,omitempty"`
	StealSeconds    []float64 `json:"steal_seconds,omitempty"`

	// size is the bytes the row's rate is of, when not the test file's.
	size int64

	walls, cpus, gwcpus           []time.Duration
	resident, dirty, other, steal []float64
}

// gatewayStats is the memory use of the gateway that served one transport.
type gatewayStats struct {
	Transport string `json:"transport"`
	// PeakRSSMiB is the gateway's VmHWM at the end, the peak over its whole life
	// (start, registration, every send and receive of this transport), or the
	// largest sample if that is higher.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// SendPeakRSSMiB and ReceivePeakRSSMiB are the largest VmRSS sampled every
	// 20ms during the sends and the receives.
	SendPeakRSSMiB    float64 `json:"send_peak_rss_mib"`
	ReceivePeakRSSMiB float64 `json:"receive_peak_rss_mib"`
	UploadRequests    int     `json:"upload_requests"`
	CiphertextBytes   int64   `json:"ciphertext_bytes"`
}

// target is one performance target and whether it was met.
type target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  bool    `json:"met"`
}

func newReport(o options) *report {
	r := &report{SizeBytes: o.size, Runs: o.runs, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		byName: map[string]*row{}}
	add := func(name, baseline string) {
		w := &row{Name: name, Baseline: baseline}
		r.Rows = append(r.Rows, w)
		r.byName[name] = w
	}
	if o.sftpFront {
		caches, _ := getCaches(o.getCache)
		r.GetCaches = caches
		add(rowSFTPPut, "")
		add(rowFrontPut, rowSFTPPut)
		for _, c := range caches {
			add(rowGet(false, c), "")
			add(rowGet(true, c), rowGet(false, c))
		}
		r.Notes = []string{
			"MB/s = file size in 10^6 bytes / median wall-clock seconds of the whole sftp command (connection set-up included)",
			"sftp put/get: OpenSSH sftp against a throwaway sshd (internal-sftp, plain files, buffered reads and writes, no fsync)",
			"via front: the same client through lexgate's SFTP front: the put is age-encrypted on ingest, hashed, fsynced and sealed; the get downloads the delivery's ciphertext (read with O_DIRECT, hashed as served)",
			"sshd and the front take turns in every run (sshd first in odd runs, the front first in even ones); every command starts after sync(2); before every put the test file is read through once, so the client reads it from memory for both",
			"cold cache: before the get, the file the server will read (sshd: the put's file; front: the stored ciphertext) is fdatasynced and dropped from the page cache with posix_fadvise(DONTNEED), as a file uploaded a while ago; the same for both",
			"warm cache: before the get, that file is read through the page cache once, the same for both; the front reads with O_DIRECT, so only sshd can gain from it",
			"resident: share of the served file in the page cache just before the get (mincore), median over the runs",
			"server CPU s: the gateway's, or sshd's with its session processes (reaped by the daemon); other CPU s: the machine's busy CPU time during the command less the client's and the server's (other work on the host, and kernel work charged to no process: I/O completion, writeback); medians",
			"ratio: against sftp put/get to sshd in the same cache state; higher is faster",
			"ssh cipher: the same for sshd and the front (-ssh-cipher; by default aes128-gcm@openssh.com, which the front offers)",
		}
		return r
	}
	add(rowAgeX25519, rowSFTPPut)
	add(rowAgePQ, rowSFTPPut)
	add(rowSFTPPut, "")
	add(rowSFTPGet, "")
	for _, t := range transports {
		add(rowSend(t), rowSFTPPut)
	}
	for _, t := range transports {
		add(rowUpload(t), rowSFTPPut)
	}
	for _, t := range transports {
		add(rowReceive(t), rowSFTPGet)
	}
	for _, t := range transports {
		add(rowDownload(t), rowSFTPGet)
	}
	if o.files > 0 {
		for _, p := range productionRows() {
			add(p[0], p[1])
		}
	}
	r.Notes = []string{
		"MB/s = file size in 10^6 bytes / median wall-clock seconds of the whole command (connection set-up included)",
		"lex send = tar + age encrypt (hybrid post-quantum), uploaded as it is encrypted (and hashed, and spooled with O_DIRECT, no fsync), then sealed; lex receive = signature check, then download with SHA-256, decrypt, untar and per-file hashes as the ciphertext arrives (large files written with O_DIRECT; no copy of the ciphertext kept, a checkpoint every 64 MiB)",
		"* upload/download only: the PATCH/GET content requests alone, from the gateway's request log (ms resolution)",
		"gateway RSS: a fresh gateway per transport; peak = its VmHWM over all its sends and receives; send/receive = VmRSS sampled every 20ms",
		"ratio: against sftp put for age and sends, sftp get for receives; higher is faster",
		"production: many small files (-files, -file-size) in 20 folders, sftp put -r/get -r beside lex send/receive over TCP; ratios against sftp -r",
		"CPU per GiB: each end's CPU (client: lex; gateway: lexgate during the command) per GiB of the test file, beside the sum of the floors it pays, each measured on one locked thread (getrusage RUSAGE_THREAD)",
	}
	return r
}

// row returns the row called name.
func (r *report) row(name string) *row {
	w, ok := r.byName[name]
	if !ok {
		panic("lexbench: no row " + name)
	}
	return w
}

// finish computes the medians, rates, ratios and targets.
func (r *report) finish() {
	for _, w := range r.Rows {
		if len(w.walls) == 0 {
			continue
		}
		d := median(w.walls)
		w.Seconds = d.Seconds()
		size := r.SizeBytes
		if w.size > 0 {
			size = w.size
		}
		w.MBps = mbps(size, d)
		w.ClientCPUSeconds = median(w.cpus).Seconds()
		w.GatewayCPUSeconds = median(w.gwcpus).Seconds()
		w.RunSeconds = nil
		for _, x := range w.walls {
			w.RunSeconds = append(w.RunSeconds, x.Seconds())
		}
		w.ResidentPercent, w.DirtyMiB, w.OtherCPUSeconds, w.StealSeconds = nil, w.dirty, w.other, w.steal
		for _, x := range w.resident {
			w.ResidentPercent = append(w.ResidentPercent, 100*x)
		}
	}
	for _, w := range r.Rows {
		if b := r.byName[w.Baseline]; b != nil && b.MBps > 0 {
			w.Ratio = w.MBps / b.MBps
		}
	}
	for _, g := range r.Gateways {
		r.GatewayPeakRSSMiB = max(r.GatewayPeakRSSMiB, g.PeakRSSMiB)
	}
	if w, ok := r.byName[rowFrontPut]; ok {
		put := w.Ratio
		r.Targets = []target{
			{Name: "sftp put via front vs sshd", Want: fmt.Sprintf("≥ %.1f×", targetFrontPut), Got: put, Unit: "×", Met: put >= targetFrontPut},
		}
		for _, c := range r.GetCaches {
			get := r.row(rowGet(true, c)).Ratio
			r.Targets = append(r.Targets, target{Name: "sftp get via front vs sshd, " + c, Want: fmt.Sprintf("≥ %.1f×", targetFrontGet), Got: get, Unit: "×", Met: get >= targetFrontGet})
		}
		return
	}
	r.budgets()
	tcp, quic := r.row(rowSend("tcp")).Ratio, r.row(rowSend("quic")).Ratio
	rcv := r.row(rowReceive("tcp")).Ratio
	r.Targets = []target{
		{Name: "lex send tcp vs sftp put", Want: fmt.Sprintf("≥ %.1f×", targetTCPSend), Got: tcp, Unit: "×", Met: tcp >= targetTCPSend},
		{Name: "lex send quic vs sftp put", Want: fmt.Sprintf("≥ %.1f×", targetQUICSend), Got: quic, Unit: "×", Met: quic >= targetQUICSend},
		{Name: "lex receive tcp vs sftp get", Want: fmt.Sprintf("≥ %.1f×", targetTCPReceive), Got: rcv, Unit: "×", Met: rcv >= targetTCPReceive},
		{Name: "gateway peak RSS", Want: fmt.Sprintf("< %d MiB", targetRSSMiB), Got: r.GatewayPeakRSSMiB, Unit: "MiB",
			Met: r.GatewayPeakRSSMiB > 0 && r.GatewayPeakRSSMiB < targetRSSMiB},
	}
	if r.ProductionFiles > 0 {
		snd, rcv := r.row(rowProdSnd).Ratio, r.row(rowProdRcv).Ratio
		r.Targets = append(r.Targets,
			target{Name: "production: lex send vs sftp put -r", Want: "> 1.0×", Got: snd, Unit: "×", Met: snd > 1},
			target{Name: "production: lex receive vs sftp get -r", Want: "> 1.0×", Got: rcv, Unit: "×", Met: rcv > 1})
	}
}

// writeJSON prints the report as indented JSON.
func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints the report for a person.
func (r *report) writeTable(w io.Writer) error {
	runs := "1 run"
	if r.Runs > 1 {
		runs = fmt.Sprintf("median of %d runs", r.Runs)
	}
	fmt.Fprintf(w, "\nlexbench: %s random file, %s, 127.0.0.1, %d CPUs, %s", humanBytes(r.SizeBytes), runs, r.CPUs, r.GoVersion)
	if r.SSHCipher != "" {
		fmt.Fprintf(w, ", ssh cipher %s", r.SSHCipher)
	}
	fmt.Fprintf(w, "\nload average %s before, %s after (other work on the host skews the numbers)\n\n", r.LoadBefore, r.LoadAfter)
	// tabwriter right-aligns every column: pad the names to one width so that they
	// read left-aligned.
	width := 0
	for _, x := range r.Rows {
		width = max(width, len(x.Name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	extra := len(r.GetCaches) > 0 // -sftp-front: the spread of the runs and the page cache
	head, server := "", "server CPU s"
	if extra {
		head, server = "MB/s min–max\tresident\t", "server CPU s\tother CPU s"
	}
	fmt.Fprintf(tw, "%s\tseconds\tMB/s\t%sratio\t\tclient CPU s\t%s\t\n", strings.Repeat(" ", width), head, server)
	for _, x := range r.Rows {
		ratio, base := "", ""
		if x.Ratio > 0 {
			ratio, base = fmt.Sprintf("%.2f×", x.Ratio), x.Baseline
		}
		cols, other := "", ""
		if extra {
			cols = spread(r.SizeBytes, x.RunSeconds) + "\t" + percent(x.ResidentPercent) + "\t"
			other = "\t" + seconds(medianOf(x.OtherCPUSeconds))
		}
		fmt.Fprintf(tw, "%-*s\t%.2f\t%.1f\t%s%s\t%s\t%s\t%s%s\t\n", width, x.Name, x.Seconds, x.MBps, cols, ratio, base,
			seconds(x.ClientCPUSeconds), seconds(x.GatewayCPUSeconds), other)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "gateway memory (MiB):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  transport\tpeak (VmHWM)\tduring send\tduring receive\tupload requests\t")
	for _, g := range r.Gateways {
		fmt.Fprintf(tw, "  %-9s\t%.1f\t%.1f\t%.1f\t%d\t\n", g.Transport, g.PeakRSSMiB, g.SendPeakRSSMiB, g.ReceivePeakRSSMiB, g.UploadRequests)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.writeBudgets(w); err != nil {
		return err
	}
	r.writeCeilings(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "targets:")
	for _, t := range r.Targets {
		got := fmt.Sprintf("%.2f×", t.Got)
		if t.Unit == "MiB" {
			got = fmt.Sprintf("%.1f MiB", t.Got)
		}
		verdict := "not met"
		if t.Met {
			verdict = "met"
		}
		fmt.Fprintf(w, "  %-40s %-10s got %-12s %s\n", t.Name, t.Want, got, verdict)
	}
	fmt.Fprintln(w)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
	return nil
}

// writeBudgets prints the CPU floors and each end's CPU beside their sum.
func (r *report) writeBudgets(w io.Writer) error {
	if len(r.Budgets) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "CPU seconds per GiB over TCP: each end's measured CPU beside the sum of its floors")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  end\tmeasured\tfloors\tabove floors\tfloors paid")
	for _, b := range r.Budgets {
		fmt.Fprintf(tw, "  %s\t%.2f\t%.2f\t%+.2f\t%s\n", b.End, b.MeasuredPerGiB, b.FloorsPerGiB, b.MeasuredPerGiB-b.FloorsPerGiB, strings.Join(b.Pieces, " + "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var fs []string
	for _, f := range r.Floors {
		fs = append(fs, fmt.Sprintf("%s %.2f", f.Name, f.SecondsPerGiB))
	}
	fmt.Fprintf(w, "  floors (CPU s/GiB, one thread each): %s\n", strings.Join(fs, ", "))
	return nil
}

// writeCeilings prints how fast lex could go beside sftp on these cores.
func (r *report) writeCeilings(w io.Writer) {
	if len(r.Ceilings) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "ceiling on %d cores: both ends of each command share them (lex + lexgate, sftp + sshd)\n", r.CPUs)
	for _, c := range r.Ceilings {
		fmt.Fprintf(w, "  %s vs %s: sftp %.2f s with %.2f CPU-s (client + sshd), %.0f%% of the cores; lex %.2f CPU-s (client + gateway), floors %.2f\n",
			c.Row, c.SFTPRow, c.SFTPSeconds, c.SFTPCPUSeconds, 100*c.SFTPCoreUse, c.LexCPUSeconds, c.LexFloorsCPUSeconds)
		fmt.Fprintf(w, "    ratio ceiling: %.2f× at lex's floors on every core, %.2f× at its measured CPU on every core, %.2f× at that CPU with sftp's use of the cores; measured %.2f×\n",
			c.AtFloors, c.AtMeasured, c.AtSFTPUse, c.Measured)
	}
}

// spread formats the slowest and fastest run's MB/s.
func spread(size int64, runs []float64) string {
	if len(runs) == 0 {
		return ""
	}
	lo, hi := slices.Max(runs), slices.Min(runs)
	return fmt.Sprintf("%.0f–%.0f", float64(size)/1e6/lo, float64(size)/1e6/hi)
}

// percent formats the median of ps as a percentage, blank if there are none.
func percent(ps []float64) string {
	if len(ps) == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%%", medianOf(ps))
}

// medianOf is the middle value of xs (the upper one of an even count), 0 if
// there are none.
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// seconds formats a CPU time column, blank when not measured.
func seconds(s float64) string {
	if s == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", s)
}

// mbps is size bytes over d in MB/s (10^6 bytes).
func mbps(size int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(size) / 1e6 / d.Seconds()
}

// mib converts bytes to MiB.
func mib(n int64) float64 { return float64(n) / (1 << 20) }
