package soak

// soak: minutes of good clients mixed with every kind of hostile one, then
// proof that the server gave back what they took and served every good client.
//
// The parent samples the server from /proc every -sample while the workers
// (soakworker.go) run the slots; after the window every client is gone, and
// the parent samples once a second for up to -settle until the server's
// descriptors are back at the baseline and its RSS within the tolerance.
//
// The run fails (non-zero exit) when any good client failed, or when after
// the settle period the descriptors are not exactly at the baseline or the
// RSS is above baseline + max(-rss-slack MiB, -rss-slack-pct % of baseline).
// Burst-fin connections the server left open past -fin-wait are a server
// bug, reported on their own line but not failing the run.
//
// The kernel's share is judged too, since no figure of the process shows
// it. A stall connection (9) still ESTABLISHED when its client gives up
// fails the run: the server never let go of it, and whatever the kernel
// holds for it stays pinned for as long as such a client likes (that the
// client's own close then frees it is the client's kindness). And the
// machine's TCP memory (/proc/net/sockstat) is sampled at the start, with
// every server sample, and at the end, after the clients are gone and, with
// -stop, the server has exited (an orphan outlives its process): the run
// fails when orphans or TCP pages at the end are more than their slack
// above the baseline (see tcpMemSlack; the counters are the machine's).
//
// VmRSS counts touched pages only: a buffer sized from a hog's declared
// length costs address space (VmData) at once and RSS only once written
// to. So VmData is sampled too, and before the window a probe opens the
// hog slots at once and measures the VmData they cost; in the mixed run
// other traffic grows the heap too. VmData is reported, not judged: Go
// never unmaps its heap, so it never comes back. So is the count of the
// server's sockets in CLOSE_WAIT.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/internal/stats"
	"github.com/wsmill/wsmill/bench/internal/wsclient"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

type soakConfig struct {
	Addr        string
	PID         int
	Src         string
	Procs       int
	Duration    time.Duration
	Good        int
	Bad         int
	Mix         string
	Spec        soakSpec
	DialTimeout time.Duration
	Sample      time.Duration
	Settle      time.Duration
	RSSSlackMiB float64
	RSSSlackPct float64
	Strict      bool
	Quiet       bool

	Stop           bool  // SIGTERM the server after the settle, measure TCP memory once it has exited
	TCPMemSlack    int64 // pages; 0: defaultTCPMemSlack
	TCPOrphanSlack int64
}

func (c *soakConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "server host:port (loopback, 127.0.0.0/8)")
	fs.IntVar(&c.PID, "pid", 0, "server process id, for RSS, fds and threads (0: not measured, and not judged)")
	fs.StringVar(&c.Src, "src", "", "comma-separated source addresses (127.0.0.0/8), used round-robin")
	fs.IntVar(&c.Procs, "procs", 0, "client processes (0: one per 15,000 slots)")
	fs.DurationVar(&c.Duration, "duration", 3*time.Minute, "how long connections are opened")
	fs.IntVar(&c.Good, "good", 200, "good clients open at a time")
	fs.IntVar(&c.Bad, "bad", 20, "connections open at a time per bad behaviour (stall: a quarter of it, rounded up; each sends -stall-burst)")
	fs.StringVar(&c.Mix, "mix", "", "per-behaviour overrides of -bad (and -good), e.g. hog=50,burst-fin=5,idle=0; names or numbers 1-9")
	fs.DurationVar(&c.Spec.Interval, "interval", time.Second, "the server's push interval (its -push-interval)")
	fs.DurationVar(&c.Spec.PushSlack, "push-slack", time.Second, "a good client fails on a push gap over 2 × -interval + this")
	fs.DurationVar(&c.Spec.GoodLife, "good-life", 20*time.Second, "a good client lives between half and 1.5 times this, then closes and is replaced")
	fs.DurationVar(&c.Spec.GoodEvery, "good-every", 250*time.Millisecond, "a good client sends one message about this often (one outstanding)")
	fs.DurationVar(&c.Spec.EchoTimeout, "echo-timeout", 5*time.Second, "a good client fails when an echo takes longer")
	fs.DurationVar(&c.Spec.Hold, "hold", 20*time.Second, "a bad connection gives up waiting for the server after this")
	fs.DurationVar(&c.Spec.Trickle, "trickle", 300*time.Millisecond, "hog and slowloris send one byte this often")
	fs.DurationVar(&c.Spec.FinWait, "fin-wait", 5*time.Second, "burst-fin: the server must close within this after the FIN")
	fs.IntVar(&c.Spec.MaxMessage, "max-message", 1<<20, "the server's -max-message: hog declares a frame of this length")
	fs.IntVar(&c.Spec.Burst, "burst", 4<<20, "burst-fin: bytes sent before the FIN")
	fs.DurationVar(&c.Spec.CloseTimeout, "close-timeout", time.Second, "the server's -close-timeout: a stall connection must end within this + -stall-slack of its burst's start")
	fs.DurationVar(&c.Spec.StallSlack, "stall-slack", 2*time.Second, "stall: time the server may take beyond -close-timeout (its timer's granularity, a busy machine)")
	fs.IntVar(&c.Spec.StallBurst, "stall-burst", 4<<20, "stall: bytes of 60,000-byte echo requests sent before stalling (well past the server's -max-outbound)")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", 5*time.Second, "timeout for one dial and upgrade, and for the greeting")
	fs.DurationVar(&c.Sample, "sample", 5*time.Second, "server sampling period during the window")
	fs.DurationVar(&c.Settle, "settle", 20*time.Second, "after the clients are gone, wait up to this for fds and RSS to come back")
	fs.Float64Var(&c.RSSSlackMiB, "rss-slack", 20, "RSS tolerance in MiB (the larger of this and -rss-slack-pct applies)")
	fs.Float64Var(&c.RSSSlackPct, "rss-slack-pct", 25, "RSS tolerance in percent of the baseline")
	fs.BoolVar(&c.Stop, "stop", false, "after the settle, stop the server (SIGTERM to -pid) and wait for it to exit before the last TCP memory sample")
	fs.Int64Var(&c.TCPMemSlack, "tcp-mem-slack", 0, "TCP memory (pages) the end may be above the baseline (0: 2 × net.core.mem_pcpu_rsv × CPUs + 256)")
	fs.Int64Var(&c.TCPOrphanSlack, "tcp-orphan-slack", 16, "orphaned TCP sockets the end may be above the baseline (other processes close connections too)")
	fs.BoolVar(&c.Strict, "strict", false, "also fail on findings: a bad connection the server held past -hold, a burst-fin left open past -fin-wait, "+
		"a wrong close code, hogs committing their declared length, a stall connection ended later than -close-timeout + -stall-slack")
}

// soakSample is one row of the timeline.
type soakSample struct {
	T        float64 `json:"t_s"` // since the window opened
	Phase    string  `json:"phase"`
	RSS      int64   `json:"rss_bytes"`
	Data     int64   `json:"vm_data_bytes"`
	FDs      int     `json:"fds"`
	CloseWt  int     `json:"close_wait"` // the server's sockets in CLOSE_WAIT
	Threads  int     `json:"threads"`
	CPU      float64 `json:"cpu_s"`
	GoodOpen int     `json:"good_open"`
	BadOpen  int     `json:"bad_open"`
	Orphans  int64   `json:"tcp_orphans"`   // the machine's
	TCPPages int64   `json:"tcp_mem_pages"` // the machine's
}

type soakGoodResult struct {
	Concurrency int            `json:"concurrency"`
	Started     int            `json:"started"`
	Served      int            `json:"served"`
	Failed      int            `json:"failed"`
	OpenAtEnd   int            `json:"open_at_end"`
	Echoes      int64          `json:"echoes"`
	Pushes      int64          `json:"pushes"`
	PushesPerS  float64        `json:"pushes_per_conn_s"`
	GapP50Ms    float64        `json:"push_gap_p50_ms"`
	GapP99Ms    float64        `json:"push_gap_p99_ms"`
	GapMaxMs    float64        `json:"push_gap_max_ms"`
	Failures    map[string]int `json:"failures,omitempty"`
}

type soakBadResult struct {
	Behaviour   string         `json:"behaviour"`
	Number      int            `json:"number"`
	What        string         `json:"what"`
	Expect      string         `json:"expect"`
	Concurrency int            `json:"concurrency"`
	Started     int            `json:"started"`
	ByServer    int            `json:"closed_by_server"`
	OpenAtEnd   int            `json:"open_at_end"`
	GaveUp      int            `json:"client_gave_up"`
	ClientEnded int            `json:"client_ended"`
	Errors      int            `json:"errors"`
	Late        int            `json:"ended_late,omitempty"` // stall: ended past -close-timeout + -stall-slack
	CloseP50Ms  float64        `json:"close_p50_ms"`
	CloseMaxMs  float64        `json:"close_max_ms"`
	Outcomes    map[string]int `json:"outcomes"`
	Finding     string         `json:"finding,omitempty"`
}

type soakResult struct {
	Workload     string          `json:"workload"`
	Verdict      string          `json:"verdict"` // PASS or FAIL
	Reasons      []string        `json:"reasons,omitempty"`
	Seconds      float64         `json:"seconds"`
	IntervalMs   float64         `json:"interval_ms"`
	PushLimitMs  float64         `json:"push_gap_limit_ms"`
	Procs        int             `json:"procs"`
	Good         soakGoodResult  `json:"good"`
	Bad          []soakBadResult `json:"bad"`
	FinNotClosed int             `json:"server_bug_fin_not_closed"`
	BurstSent    int64           `json:"burst_sent_bytes"`
	BurstEchoed  int64           `json:"burst_echoed_bytes"`
	StallMaxMs   float64         `json:"client_stall_max_ms"` // the client's own worst scheduling delay
	ClientCPU    float64         `json:"client_cpu_s"`
	ServerCPU    float64         `json:"server_cpu_s"` // over the window and the settle period
	Measured     bool            `json:"server_measured"`
	Baseline     proc.Stat       `json:"server_baseline"`
	Peak         proc.Stat       `json:"server_peak"` // each figure's maximum over the samples
	After        proc.Stat       `json:"server_after"`
	CloseWtBase  int             `json:"close_wait_baseline"`
	CloseWtPeak  int             `json:"close_wait_peak"`
	CloseWtAfter int             `json:"close_wait_after"`
	RSSLimit     int64           `json:"rss_limit_bytes"`
	MaxMessage   int             `json:"max_message"`
	HogProbe     *hogProbe       `json:"hog_probe,omitempty"`
	TCP          soakTCP         `json:"tcp"`
	Findings     []string        `json:"findings,omitempty"` // where the server did not do what a behaviour expects
	Strict       bool            `json:"strict"`
	SettleS      float64         `json:"settle_s"`
	Timeline     []soakSample    `json:"timeline"`
	Warnings     []string        `json:"warnings,omitempty"`
}

// soakTCP is the machine's TCP memory over the run.
type soakTCP struct {
	Measured      bool        `json:"measured"` // /proc/net/sockstat was readable
	Baseline      proc.TCPMem `json:"baseline"`
	Peak          proc.TCPMem `json:"peak"` // each figure's maximum over the samples
	End           proc.TCPMem `json:"end"`
	ServerStopped bool        `json:"server_stopped"` // End was taken after the server exited (-stop)
	SettleS       float64     `json:"settle_s"`       // from the clients' (or the server's) end to End
	MemSlack      int64       `json:"mem_slack_pages"`
	OrphanSlack   int64       `json:"orphan_slack"`
}

// Command runs "wsload soak".
func Command(ctx context.Context, args []string) error {
	var cfg soakConfig
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	cfg.register(fs)
	res, err := report.Command(ctx, fs, args, func(ctx context.Context) (*soakResult, error) { return runSoak(ctx, cfg) }, printSoak)
	if err == nil && res.Verdict != "PASS" {
		err = fmt.Errorf("FAIL: %s", strings.Join(res.Reasons, "; "))
	}
	return err
}

// parseMix applies "name=N,..." overrides to counts. A name is a class
// name (good, hog, ...) or a bad behaviour's number (1-9).
func parseMix(s string, counts [nClasses]int) ([nClasses]int, error) {
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil || n < 0 {
			return counts, fmt.Errorf("-mix: %q is not NAME=COUNT", f)
		}
		cl, ok := classByName(strings.TrimSpace(k))
		if !ok {
			return counts, fmt.Errorf("-mix: unknown behaviour %q", k)
		}
		counts[cl] = n
	}
	return counts, nil
}

func classByName(k string) (soakClass, bool) {
	if n, err := strconv.Atoi(k); err == nil && n >= 1 && n < int(nClasses) {
		return soakClass(n), true
	}
	for cl := range nClasses {
		if classInfo[cl].name == k {
			return cl, true
		}
	}
	return 0, false
}

// checkLoopback refuses targets and sources outside 127.0.0.0/8: the soak
// is hostile on purpose.
func checkLoopback(addr string, src []string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	for _, h := range append([]string{host}, src...) {
		ip := net.ParseIP(h).To4()
		if ip == nil || ip[0] != 127 {
			return fmt.Errorf("%q is not an IPv4 loopback address (127.0.0.0/8): soak only runs on loopback", h)
		}
	}
	return nil
}

// rssLimit is the largest RSS after the run that still counts as back:
// baseline + the larger of slackMiB and pct % of the baseline.
func rssLimit(base int64, slackMiB, pct float64) int64 {
	return base + max(int64(slackMiB*(1<<20)), int64(float64(base)*pct/100))
}

// serverBack reports whether the server's resources are back: descriptors
// exactly at the baseline, RSS within the limit.
func serverBack(base, now proc.Stat, limit int64) bool {
	return now.FDs == base.FDs && now.RSS <= limit
}

// soakCounts is the slots per class: -good, -bad per bad behaviour, then
// -mix. Stall gets a quarter of -bad: each of its connections sends
// -stall-burst (4 MiB) that the server reads and the machine carries,
// while the others send bytes.
func soakCounts(good, bad int, mix string) ([nClasses]int, error) {
	var counts [nClasses]int
	counts[classGood] = good
	for cl := classHog; cl < nClasses; cl++ {
		counts[cl] = bad
	}
	counts[classStall] = (bad + 3) / 4
	return parseMix(mix, counts)
}

func runSoak(ctx context.Context, cfg soakConfig) (*soakResult, error) {
	src := fleet.ParseSrc(cfg.Src)
	if err := checkLoopback(cfg.Addr, src); err != nil {
		return nil, err
	}
	counts, err := soakCounts(cfg.Good, cfg.Bad, cfg.Mix)
	if err != nil {
		return nil, err
	}
	ss := cfg.Spec
	ss.Counts = counts
	switch {
	case counts[classGood] < 1:
		return nil, fmt.Errorf("need at least one good client (-good)")
	case cfg.Duration < 5*time.Second || ss.Interval <= 0 || ss.GoodLife <= 0 || ss.GoodEvery <= 0 ||
		ss.Hold <= 0 || ss.Trickle <= 0 || ss.EchoTimeout <= 0 || cfg.Sample <= 0:
		return nil, fmt.Errorf("-duration (≥ 5s), -interval, -good-life, -good-every, -echo-timeout, -hold, -trickle and -sample must be positive")
	case ss.MaxMessage < 1 || ss.Burst < 1 || ss.StallBurst < 1 || ss.CloseTimeout <= 0 || ss.StallSlack < 0:
		return nil, fmt.Errorf("-max-message, -burst, -stall-burst and -close-timeout must be positive, -stall-slack not negative")
	case cfg.Stop && cfg.PID <= 0:
		return nil, fmt.Errorf("-stop needs the server's -pid")
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	procs := cfg.Procs
	if procs <= 0 {
		procs = (total + 14999) / 15000 // a slot holds one connection at a time
	}

	res := &soakResult{Workload: "soak", Seconds: cfg.Duration.Seconds(), IntervalMs: stats.Ms(ss.Interval),
		PushLimitMs: stats.Ms(ss.pushLimit()), Procs: procs, Measured: cfg.PID > 0, MaxMessage: ss.MaxMessage, Strict: cfg.Strict}
	_, portStr, _ := net.SplitHostPort(cfg.Addr)
	port, _ := strconv.Atoi(portStr)
	res.TCP.MemSlack, res.TCP.OrphanSlack = cfg.TCPMemSlack, cfg.TCPOrphanSlack
	if res.TCP.MemSlack <= 0 {
		res.TCP.MemSlack = proc.DefaultTCPMemSlack()
	}
	if m, err := proc.ReadTCPMem(); err != nil {
		res.Warnings = append(res.Warnings, "the machine's TCP memory is not measured: "+err.Error())
	} else {
		res.TCP.Measured, res.TCP.Baseline, res.TCP.Peak = true, m, m
	}
	sampleTCP := func() (proc.TCPMem, error) {
		m, err := proc.ReadTCPMem()
		res.TCP.Peak = proc.PeakTCPMem(res.TCP.Peak, m)
		return m, err
	}
	if cfg.PID > 0 {
		if res.Baseline, err = proc.ReadStat(cfg.PID); err != nil {
			return nil, err
		}
		if res.CloseWtBase, err = proc.CountTCPState(cfg.PID, port, proc.TCPCloseWait); err != nil {
			return nil, err
		}
		res.Peak = res.Baseline
		res.RSSLimit = rssLimit(res.Baseline.RSS, cfg.RSSSlackMiB, cfg.RSSSlackPct)
	}
	if cfg.PID > 0 && counts[classHog] > 0 {
		if res.HogProbe, err = probeHogs(ctx, cfg, counts[classHog]); err != nil {
			return nil, err
		}
	}
	params, err := json.Marshal(&ss)
	if err != nil {
		return nil, err
	}
	spec := fleet.Spec{Mode: "soak", Addr: cfg.Addr, Src: src, DialTimeout: cfg.DialTimeout, Params: params}
	p, err := fleet.StartPool(ctx, spec, fleet.PoolOptions{Total: total, Procs: procs, InProc: true})
	if err != nil {
		return nil, err
	}
	defer p.Shutdown(3 * time.Second)
	if _, err := p.WaitReady(ctx, 30*time.Second, false); err != nil {
		return nil, err
	}
	if err := p.Broadcast(fleet.Command{Cmd: "start", Duration: cfg.Duration}); err != nil {
		return nil, err
	}
	start := time.Now()
	cpu0 := proc.SelfCPU()
	if !cfg.Quiet {
		fmt.Fprintf(cli.Stderr, "soak: %d good + %d bad slots for %v over %d process(es)\n", counts[classGood], total-counts[classGood], cfg.Duration, procs)
	}

	open := map[int][]int{} // latest open counts per worker
	sample := func(phase string) (proc.Stat, error) {
		ps, err := proc.ReadStat(cfg.PID)
		if err != nil {
			return ps, err
		}
		cw, err := proc.CountTCPState(cfg.PID, port, proc.TCPCloseWait)
		if err != nil {
			return ps, err
		}
		row := soakSample{T: time.Since(start).Seconds(), Phase: phase, RSS: ps.RSS, Data: ps.Data, FDs: ps.FDs,
			CloseWt: cw, Threads: ps.Threads, CPU: ps.CPU}
		if res.TCP.Measured {
			m, err := sampleTCP()
			if err != nil {
				return ps, err
			}
			row.Orphans, row.TCPPages = m.Orphan, m.Mem
		}
		res.CloseWtAfter = cw
		if phase == "run" {
			for _, o := range open {
				for cl, n := range o {
					if soakClass(cl) == classGood {
						row.GoodOpen += n
					} else {
						row.BadOpen += n
					}
				}
			}
		}
		res.Timeline = append(res.Timeline, row)
		res.Peak.RSS = max(res.Peak.RSS, ps.RSS)
		res.Peak.Data = max(res.Peak.Data, ps.Data)
		res.Peak.FDs = max(res.Peak.FDs, ps.FDs)
		res.CloseWtPeak = max(res.CloseWtPeak, cw)
		res.Peak.Threads = max(res.Peak.Threads, ps.Threads)
		if !cfg.Quiet {
			fmt.Fprintf(cli.Stderr, "soak: %6.0fs %-6s RSS %s, VmData %s, fds %d, CLOSE_WAIT %d, threads %d, open good %d bad %d; TCP orphans %d, mem %d pages\n",
				row.T, phase, proc.MiB(ps.RSS), proc.MiB(ps.Data), ps.FDs, cw, ps.Threads, row.GoodOpen, row.BadOpen, row.Orphans, row.TCPPages)
		}
		return ps, nil
	}

	// The window: sample the server, gather the workers' ticks and results.
	var parts []*soakPart
	got := map[int]bool{}
	tick := time.NewTicker(cfg.Sample)
	defer tick.Stop()
	deadline := time.NewTimer(cfg.Duration + ss.Hold + ss.FinWait + ss.EchoTimeout + time.Minute)
	defer deadline.Stop()
	for len(got) < len(p.Workers) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("%d of %d workers sent no result in time", len(p.Workers)-len(got), len(p.Workers))
		case <-tick.C:
			if cfg.PID > 0 {
				if _, err := sample("run"); err != nil {
					return nil, err
				}
			} else if res.TCP.Measured {
				if _, err := sampleTCP(); err != nil {
					return nil, err
				}
			}
		case e := <-p.Events:
			switch e.Type {
			case "tick":
				open[e.Worker] = e.Open
			case "result":
				part, err := fleet.DecodePart[soakPart](e)
				if err != nil {
					return nil, err
				}
				got[e.Worker] = true
				parts = append(parts, part)
			case "fatal":
				return nil, fmt.Errorf("worker %d: %s", e.Worker, e.Err)
			case "exit":
				p.Alive--
				if !got[e.Worker] {
					return nil, fmt.Errorf("worker %d ended before sending its result", e.Worker)
				}
			}
		}
	}
	if _, err := p.CloseAll(30 * time.Second); err != nil {
		return nil, err
	}
	res.ClientCPU = proc.SelfCPU() - cpu0
	if err := mergeSoak(res, parts, counts); err != nil {
		return nil, err
	}

	// Every client is gone: give the server -settle to come back.
	if cfg.PID > 0 {
		t0 := time.Now()
		clear(open)
		for {
			if err := proc.Sleep(ctx, time.Second); err != nil {
				return nil, err
			}
			ps, err := sample("settle")
			if err != nil {
				return nil, err
			}
			res.After = ps
			if serverBack(res.Baseline, ps, res.RSSLimit) || time.Since(t0) >= cfg.Settle {
				break
			}
		}
		res.SettleS = time.Since(t0).Seconds()
		res.ServerCPU = res.After.CPU - res.Baseline.CPU
	}

	// The kernel's share: what the sockets left behind, once the clients
	// and (with -stop) the server are gone.
	if cfg.Stop {
		if err := proc.Stop(ctx, cfg.PID, cfg.Settle); err != nil {
			return nil, err
		}
		res.TCP.ServerStopped = true
	}
	if res.TCP.Measured {
		t0 := time.Now()
		for {
			m, err := sampleTCP()
			if err != nil {
				return nil, err
			}
			res.TCP.End = m
			if proc.TCPMemBack(res.TCP.Baseline, m, res.TCP.MemSlack, res.TCP.OrphanSlack) || time.Since(t0) >= cfg.Settle {
				break
			}
			if err := proc.Sleep(ctx, time.Second); err != nil {
				return nil, err
			}
		}
		res.TCP.SettleS = time.Since(t0).Seconds()
		if !cfg.Quiet {
			fmt.Fprintf(cli.Stderr, "soak: TCP at the end (server %s): orphans %d, mem %d pages; baseline %d, %d\n",
				map[bool]string{true: "stopped", false: "running"}[res.TCP.ServerStopped],
				res.TCP.End.Orphan, res.TCP.End.Mem, res.TCP.Baseline.Orphan, res.TCP.Baseline.Mem)
		}
	}
	soakVerdict(res)
	return res, nil
}

// mergeSoak sums the workers' parts into res.
func mergeSoak(res *soakResult, parts []*soakPart, counts [nClasses]int) error {
	var cls [nClasses]soakClassStats
	var hists [nClasses]*hdr.Histogram
	gaps := stats.CloseHist()
	g := &res.Good
	g.Concurrency = counts[classGood]
	var maxGap int64
	var goodSeconds float64
	for cl := range nClasses {
		hists[cl] = stats.CloseHist()
	}
	for _, p := range parts {
		pg := p.Good
		g.Started += pg.Started
		g.Served += pg.Served
		g.Failed += pg.Failed
		g.OpenAtEnd += pg.OpenAtEnd
		g.Echoes += pg.Echoes
		g.Pushes += pg.Pushes
		goodSeconds += pg.Seconds
		maxGap = max(maxGap, pg.MaxGapNs)
		for k, v := range pg.Failures {
			if g.Failures == nil {
				g.Failures = map[string]int{}
			}
			g.Failures[k] += v
		}
		if err := mergeHist(gaps, pg.GapHist); err != nil {
			return err
		}
		res.FinNotClosed += p.FinNotClosed
		res.BurstSent += p.BurstSent
		res.BurstEchoed += p.BurstEchoed
		res.StallMaxMs = max(res.StallMaxMs, float64(p.StallMaxNs)/1e6)
		for cl := range nClasses {
			c, s := &cls[cl], p.Classes[cl]
			c.Started += s.Started
			c.ByServer += s.ByServer
			c.OpenAtEnd += s.OpenAtEnd
			c.GaveUp += s.GaveUp
			c.ClientEnded += s.ClientEnded
			c.Errors += s.Errors
			c.Late += s.Late
			for k, v := range s.Outcomes {
				if c.Outcomes == nil {
					c.Outcomes = map[string]int{}
				}
				c.Outcomes[k] += v
			}
			if err := mergeHist(hists[cl], s.Hist); err != nil {
				return err
			}
		}
	}
	g.GapP50Ms = float64(gaps.ValueAtQuantile(50))
	g.GapP99Ms = float64(gaps.ValueAtQuantile(99))
	g.GapMaxMs = float64(maxGap) / 1e6
	if g.Failed > 0 && res.StallMaxMs >= res.PushLimitMs-res.IntervalMs {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the client itself stalled for up to %.0f ms: push-gap failures may be the machine's (CPU starvation), not the server's; "+
			"rerun on a quieter machine or with a larger -push-slack", res.StallMaxMs))
	}
	if goodSeconds > 0 {
		g.PushesPerS = float64(g.Pushes) / goodSeconds
		if want := 1 / res.IntervalMs * 1000; g.PushesPerS < 0.5*want || g.PushesPerS > 1.5*want {
			res.Warnings = append(res.Warnings, fmt.Sprintf("good clients got %.2f pushes/s for %.2f expected: is the server's -push-interval %v?",
				g.PushesPerS, want, time.Duration(res.IntervalMs*1e6)))
		}
	}
	for cl := classHog; cl < nClasses; cl++ {
		c := cls[cl]
		if counts[cl] == 0 {
			continue
		}
		b := soakBadResult{Behaviour: classInfo[cl].name, Number: int(cl), What: classInfo[cl].what, Expect: classInfo[cl].expect,
			Concurrency: counts[cl], Started: c.Started, ByServer: c.ByServer, OpenAtEnd: c.OpenAtEnd, GaveUp: c.GaveUp,
			ClientEnded: c.ClientEnded, Errors: c.Errors, Late: c.Late, Outcomes: c.Outcomes}
		if c.ByServer > 0 {
			b.CloseP50Ms = float64(hists[cl].ValueAtQuantile(50))
			b.CloseMaxMs = float64(hists[cl].Max())
		}
		b.Finding = soakFinding(cl, c, res.FinNotClosed)
		res.Bad = append(res.Bad, b)
	}
	return nil
}

func mergeHist(h *hdr.Histogram, enc string) error {
	if enc == "" {
		return nil
	}
	wh, err := hdr.Decode([]byte(enc))
	if err != nil {
		return fmt.Errorf("worker histogram: %w", err)
	}
	h.Merge(wh)
	return nil
}

// soakFinding says, for one bad behaviour, where the server did not do what
// classInfo expects ("" when it did, or when nothing is expected but fds
// and RSS). It does not fail the run.
func soakFinding(cl soakClass, c soakClassStats, finBug int) string {
	var f []string
	if c.Errors > 0 {
		f = append(f, fmt.Sprintf("%d could not connect or upgrade", c.Errors))
	}
	switch cl {
	case classHTTPHold, classSlowloris, classNoRead, classIdle:
		if c.GaveUp > 0 {
			f = append(f, fmt.Sprintf("%d still held by the server when the client gave up after -hold", c.GaveUp))
		}
	case classStall:
		// Still ESTABLISHED when the client gave up fails the run (soakVerdict).
		if c.Late > 0 {
			f = append(f, fmt.Sprintf("%d ended later than -close-timeout + -stall-slack after the burst's start", c.Late))
		}
	case classBurstFIN:
		if finBug > 0 {
			f = append(f, fmt.Sprintf("SERVER BUG: %d not closed within -fin-wait of the FIN", finBug))
		}
	case classInvalid:
		bad := 0
		for k, v := range c.Outcomes {
			if !strings.Contains(k, "as expected") && !strings.HasPrefix(k, "open at end") && !strings.HasPrefix(k, "upgrade: ") {
				bad += v
			}
		}
		if bad > 0 {
			f = append(f, fmt.Sprintf("%d closed without the expected code", bad))
		}
	}
	return strings.Join(f, "; ")
}

// hogProbe is what n hogs, opened at once before the window, cost the server.
type hogProbe struct {
	N          int   `json:"n"`
	Opened     int   `json:"opened"`
	RSSGrowth  int64 `json:"rss_growth_bytes"`
	DataGrowth int64 `json:"vm_data_growth_bytes"`
	PerHog     int64 `json:"vm_data_per_hog_bytes"`
}

// probeHogs opens n hogs at once, each declaring -max-message and sending
// its first payload byte, waits a second, and measures the server's growth;
// then closes them. On a quiet server this is the hogs' cost alone.
func probeHogs(ctx context.Context, cfg soakConfig, n int) (*hogProbe, error) {
	before, err := proc.ReadStat(cfg.PID)
	if err != nil {
		return nil, err
	}
	src := fleet.ParseSrc(cfg.Src)
	conns := make([]*wsclient.Conn, 0, n)
	defer func() { fleet.CloseConns(conns) }()
	for i := range n {
		o := wsclient.Options{Addr: cfg.Addr, Timeout: cfg.DialTimeout}
		if len(src) > 0 {
			o.Src = src[i%len(src)]
		}
		c, err := wsclient.Dial(ctx, o)
		if err != nil {
			continue
		}
		conns = append(conns, c)
		if c.ExpectGreeting(cfg.DialTimeout) != nil {
			continue
		}
		c.NC.SetWriteDeadline(time.Now().Add(cfg.DialTimeout))
		c.WriteRaw(append(wsclient.AppendHeader(nil, 0x80|wsclient.OpBinary, uint64(cfg.Spec.MaxMessage), true), 0))
	}
	if err := proc.Sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	after, err := proc.ReadStat(cfg.PID)
	if err != nil {
		return nil, err
	}
	p := &hogProbe{N: n, Opened: len(conns), RSSGrowth: after.RSS - before.RSS, DataGrowth: after.Data - before.Data}
	if len(conns) > 0 {
		p.PerHog = p.DataGrowth / int64(len(conns))
	}
	fleet.CloseConns(conns)
	conns = nil
	// Give the server a moment to drop them before the window opens.
	return p, proc.Sleep(ctx, time.Second)
}

// hogFinding is the hog row's finding from the probe: a server that commits
// at least half the declared length per hog sizes its buffer from the header.
func hogFinding(p *hogProbe, maxMessage int) string {
	if p == nil || p.Opened == 0 || p.PerHog < int64(maxMessage)/2 {
		return ""
	}
	return fmt.Sprintf("probe: %d hogs at once grew the server's VmData by %s, %s per hog for %s declared: "+
		"memory committed from the declared length before the payload arrives (VmRSS +%s: it shows only once written to)",
		p.Opened, proc.MiB(p.DataGrowth), kib(p.PerHog), kib(int64(maxMessage)), proc.MiB(p.RSSGrowth))
}

func kib(b int64) string { return fmt.Sprintf("%d KiB", b>>10) }

// soakVerdict gathers the findings and sets res.Verdict and the reasons
// for a FAIL.
func soakVerdict(res *soakResult) {
	res.Findings = nil
	for i, b := range res.Bad {
		if b.Number == int(classHog) {
			if f := hogFinding(res.HogProbe, res.MaxMessage); f != "" {
				res.Bad[i].Finding = strings.TrimPrefix(b.Finding+"; "+f, "; ")
			}
		}
		if res.Bad[i].Finding != "" {
			res.Findings = append(res.Findings, fmt.Sprintf("%d %s: %s", b.Number, b.Behaviour, res.Bad[i].Finding))
		}
	}
	var r []string
	if res.Good.Started == 0 {
		r = append(r, "no good client ran")
	}
	if res.Good.Failed > 0 {
		r = append(r, fmt.Sprintf("%d of %d good clients failed", res.Good.Failed, res.Good.Started))
	}
	if res.Measured {
		if res.After.FDs != res.Baseline.FDs {
			r = append(r, fmt.Sprintf("server fds %d after the run, baseline %d", res.After.FDs, res.Baseline.FDs))
		}
		if res.After.RSS > res.RSSLimit {
			r = append(r, fmt.Sprintf("server RSS %s after the run, limit %s (baseline %s)", proc.MiB(res.After.RSS), proc.MiB(res.RSSLimit), proc.MiB(res.Baseline.RSS)))
		}
	}
	for _, b := range res.Bad {
		if b.Number == int(classStall) && b.GaveUp > 0 {
			r = append(r, fmt.Sprintf("%d of %d stall connections still ESTABLISHED when their client gave up: the server never ended them, "+
				"and the kernel kept what it could not send them", b.GaveUp, b.Started))
		}
	}
	if t := res.TCP; t.Measured {
		if t.End.Orphan > t.Baseline.Orphan+t.OrphanSlack {
			r = append(r, fmt.Sprintf("%d orphaned TCP sockets at the end, baseline %d + slack %d", t.End.Orphan, t.Baseline.Orphan, t.OrphanSlack))
		}
		if t.End.Mem > t.Baseline.Mem+t.MemSlack {
			r = append(r, fmt.Sprintf("TCP memory %d pages at the end, baseline %d + slack %d: socket buffers not given back",
				t.End.Mem, t.Baseline.Mem, t.MemSlack))
		}
	}
	if res.Strict && len(res.Findings) > 0 {
		r = append(r, fmt.Sprintf("-strict: %d behaviour(s) with findings", len(res.Findings)))
	}
	res.Reasons = r
	res.Verdict = "PASS"
	if len(r) > 0 {
		res.Verdict = "FAIL"
	}
}

func printSoak(w io.Writer, r *soakResult) {
	t := report.NewTable(w)
	t.Row("soak", fmt.Sprintf("%.0f s, %d client process(es), push interval %.0f ms, push gap limit %.0f ms", r.Seconds, r.Procs, r.IntervalMs, r.PushLimitMs))
	g := r.Good
	t.Row("good clients (at a time)", strconv.Itoa(g.Concurrency))
	t.Row("good started / served / FAILED", fmt.Sprintf("%d / %d / %d (%d were open at the end)", g.Started, g.Served, g.Failed, g.OpenAtEnd))
	t.Row("good echoes verified / pushes", fmt.Sprintf("%d / %d (%.2f pushes per connection-second)", g.Echoes, g.Pushes, g.PushesPerS))
	t.Row("push gap p50 / p99 / max", fmt.Sprintf("%.0f / %.0f / %.0f ms", g.GapP50Ms, g.GapP99Ms, g.GapMaxMs))
	t.Row("client: CPU / worst own stall", fmt.Sprintf("%.1f s / %.0f ms (a 100 ms ticker's lateness)", r.ClientCPU, r.StallMaxMs))
	for _, k := range sortedKeys(g.Failures) {
		t.Row("  good failure", fmt.Sprintf("%d × %s", g.Failures[k], k))
	}
	t.Flush()

	fmt.Fprintln(w)
	t = report.NewTable(w)
	t.Row("#", "behaviour", "at a time", "started", "closed by server", "open at end", "client gave up", "client ended", "errors", "close p50 / max")
	for _, b := range r.Bad {
		cl := "-"
		if b.ByServer > 0 {
			cl = fmt.Sprintf("%s / %s", fmtMs(b.CloseP50Ms), fmtMs(b.CloseMaxMs))
		}
		t.Row(strconv.Itoa(b.Number), b.Behaviour, strconv.Itoa(b.Concurrency), strconv.Itoa(b.Started), strconv.Itoa(b.ByServer), strconv.Itoa(b.OpenAtEnd),
			strconv.Itoa(b.GaveUp), strconv.Itoa(b.ClientEnded), strconv.Itoa(b.Errors), cl)
	}
	t.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "what the server did (count × outcome; close times from: hog header, HTTP request, FIN, first byte, greeting, the invalid frame, the stall burst's start)")
	for _, b := range r.Bad {
		fmt.Fprintf(w, "  %d %s: %s; expected: %s\n", b.Number, b.Behaviour, b.What, b.Expect)
		for _, k := range sortedByCount(b.Outcomes) {
			fmt.Fprintf(w, "      %6d × %s\n", b.Outcomes[k], k)
		}
		if b.Finding != "" {
			fmt.Fprintf(w, "      NOTE: %s\n", b.Finding)
		}
	}
	if r.BurstSent > 0 {
		fmt.Fprintf(w, "  burst-fin bytes sent / echoed: %d / %d\n", r.BurstSent, r.BurstEchoed)
	}
	fmt.Fprintln(w)
	if r.FinNotClosed > 0 {
		fmt.Fprintf(w, "*** SERVER BUG: %d burst-fin connections not closed within -fin-wait after the client's FIN ***\n\n", r.FinNotClosed)
	} else {
		fmt.Fprintln(w, "burst-fin: every connection closed within -fin-wait after the FIN")
		fmt.Fprintln(w)
	}

	if r.Measured {
		t = report.NewTable(w)
		t.Row("t (s)", "phase", "RSS", "VmData", "fds", "CLOSE_WAIT", "threads", "CPU (s)", "good open", "bad open", "TCP orphans", "TCP mem (pages)")
		for _, s := range r.Timeline {
			t.Row(fmt.Sprintf("%.0f", s.T), s.Phase, proc.MiB(s.RSS), proc.MiB(s.Data), strconv.Itoa(s.FDs), strconv.Itoa(s.CloseWt), strconv.Itoa(s.Threads),
				fmt.Sprintf("%.1f", s.CPU), strconv.Itoa(s.GoodOpen), strconv.Itoa(s.BadOpen), i64toa(s.Orphans), i64toa(s.TCPPages))
		}
		t.Flush()
		fmt.Fprintln(w)
		t = report.NewTable(w)
		t.Row("server", "RSS", "fds", "VmData", "CLOSE_WAIT", "threads")
		t.Row("baseline", proc.MiB(r.Baseline.RSS), strconv.Itoa(r.Baseline.FDs), proc.MiB(r.Baseline.Data), strconv.Itoa(r.CloseWtBase), strconv.Itoa(r.Baseline.Threads))
		t.Row("peak", proc.MiB(r.Peak.RSS), strconv.Itoa(r.Peak.FDs), proc.MiB(r.Peak.Data), strconv.Itoa(r.CloseWtPeak), strconv.Itoa(r.Peak.Threads))
		t.Row(fmt.Sprintf("after (%.0f s settle)", r.SettleS), proc.MiB(r.After.RSS), strconv.Itoa(r.After.FDs), proc.MiB(r.After.Data), strconv.Itoa(r.CloseWtAfter), strconv.Itoa(r.After.Threads))
		t.Row("pass if after ≤", proc.MiB(r.RSSLimit), strconv.Itoa(r.Baseline.FDs)+" (exact)", "(reported)", "(reported)", "(reported)")
		t.Flush()
		fmt.Fprintf(w, "server CPU over the run: %.1f s\n", r.ServerCPU)
		if p := r.HogProbe; p != nil {
			fmt.Fprintf(w, "hog probe before the window: %d of %d hogs opened at once, each declaring %s: server VmData +%s (%s per hog), RSS +%s\n",
				p.Opened, p.N, kib(int64(r.MaxMessage)), proc.MiB(p.DataGrowth), kib(p.PerHog), proc.MiB(p.RSSGrowth))
		}
	} else {
		fmt.Fprintln(w, "server not measured (no -pid): RSS and fds not judged")
	}
	if t := r.TCP; t.Measured {
		fmt.Fprintln(w)
		printTCPMem(w, t)
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", s)
	}
	if len(r.Findings) > 0 {
		strict := "not failing the run; -strict makes them fail it"
		if r.Strict {
			strict = "failing the run (-strict)"
		}
		fmt.Fprintf(w, "\nFINDINGS (%s):\n", strict)
		for _, f := range r.Findings {
			fmt.Fprintf(w, "  - %s\n", f)
		}
	}
	fmt.Fprintf(w, "\nVERDICT: %s\n", r.Verdict)
	for _, s := range r.Reasons {
		fmt.Fprintf(w, "  - %s\n", s)
	}
}

// printTCPMem prints the machine's TCP memory: baseline, peak, end, limits.
func printTCPMem(w io.Writer, m soakTCP) {
	page := int64(os.Getpagesize())
	pages := func(n int64) string { return fmt.Sprintf("%d (%s)", n, proc.MiB(n*page)) }
	end := "end (server running"
	if m.ServerStopped {
		end = "end (server stopped"
	}
	end += fmt.Sprintf(", %.0f s settle)", m.SettleS)
	t := report.NewTable(w)
	t.Row("machine TCP (/proc/net/sockstat)", "inuse", "orphans", "TIME_WAIT", "mem pages")
	t.Row("baseline", i64toa(m.Baseline.InUse), i64toa(m.Baseline.Orphan), i64toa(m.Baseline.TW), pages(m.Baseline.Mem))
	t.Row("peak", i64toa(m.Peak.InUse), i64toa(m.Peak.Orphan), i64toa(m.Peak.TW), pages(m.Peak.Mem))
	t.Row(end, i64toa(m.End.InUse), i64toa(m.End.Orphan), i64toa(m.End.TW), pages(m.End.Mem))
	t.Row("pass if end ≤", "(reported)", fmt.Sprintf("%d (+%d)", m.Baseline.Orphan+m.OrphanSlack, m.OrphanSlack), "(reported)",
		fmt.Sprintf("%d (+%d)", m.Baseline.Mem+m.MemSlack, m.MemSlack))
	t.Flush()
	fmt.Fprintf(w, "tcp_mem (pages): min %d, pressure %d, max %d; the peak was %.1f %% of pressure (counters shared with every process on the machine)\n",
		m.Baseline.Min, m.Baseline.Pressure, m.Baseline.Max, 100*float64(m.Peak.Mem)/float64(max(m.Baseline.Pressure, 1)))
}

func i64toa(n int64) string { return strconv.FormatInt(n, 10) }

func fmtMs(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1f s", v/1000)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortedByCount lists m's keys, largest count first.
func sortedByCount(m map[string]int) []string {
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	return keys
}
