package scale

// scale: K wsmill processes on one port (-reuseport) and as many epoll
// client processes as needed hold N connections; every connection's
// greeting and every time push during a hold is checked, in steps, with
// the memory (user and kernel), CPU per push and push lag at each step.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/internal/stats"
	"github.com/wsmill/wsmill/bench/internal/target"
	"github.com/wsmill/wsmill/bench/internal/wsclient"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

type scaleConfig struct {
	N           int
	Step        int
	Servers     int
	PerServer   int
	PerClient   int
	PerSrc      int
	Interval    time.Duration
	Hold        time.Duration
	ServerBin   string
	Root        string
	Workers     int
	GoMaxProcs  int
	ClientProcs int
	MaxConns    int
	ServerFlags string
	DialConc    int
	DialTimeout time.Duration
	DialBudget  time.Duration
	Out         string
	MinAvailMiB int64
	MaxFailPct  float64
	StopOnMiss  bool
	Timeout     time.Duration
	Quiet       bool
}

func (c *scaleConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.N, "n", 3000, "connections to hold in the end")
	fs.IntVar(&c.Step, "step", 0, "connections added per step, each step measured (0: one step of -n)")
	fs.IntVar(&c.Servers, "servers", 0, "wsmill processes on the port (0: ⌈n / per-server⌉)")
	fs.IntVar(&c.PerServer, "per-server", 18500, "connections planned per server process when -servers is 0: under -max-conns with room for the kernel's uneven spread")
	fs.IntVar(&c.PerClient, "per-client", 19000, "most connections per client process (open-file limit)")
	fs.IntVar(&c.PerSrc, "per-src", 16000, "connections per source address 127.0.0.2, 127.0.0.3...: under the ~28,000 ephemeral ports, so that connect(2) finds a free one quickly")
	fs.DurationVar(&c.Interval, "interval", 5*time.Second, "the servers' -push-interval")
	fs.DurationVar(&c.Hold, "hold", 0, "push window measured at each step (0: 3 intervals)")
	fs.StringVar(&c.ServerBin, "server-bin", "", "wsmill binary (default: go build the repository root into a temporary directory)")
	fs.StringVar(&c.Root, "root", "", "repository root for the build (default: found from the working directory)")
	fs.IntVar(&c.Workers, "workers", 1, "each server's -workers")
	fs.IntVar(&c.GoMaxProcs, "gomaxprocs", 1, "each server's GOMAXPROCS (0: the Go default, one per core)")
	fs.IntVar(&c.ClientProcs, "client-gomaxprocs", 1, "each client process's GOMAXPROCS (0: the Go default): one loop goroutine needs one P")
	fs.IntVar(&c.MaxConns, "max-conns", 19900, "each server's -max-conns")
	fs.StringVar(&c.ServerFlags, "server-flags", "-idle-timeout 0", "more wsmill flags")
	fs.IntVar(&c.DialConc, "dial-concurrency", 128, "connects in flight per client process")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", 15*time.Second, "time for one connection's connect, upgrade and greeting")
	fs.DurationVar(&c.DialBudget, "dial-budget", 0, "most time one step may dial before it is measured with what it has and the ramp stops (0: 2 × dial-timeout + 2 ms per new connection + 30 s)")
	fs.StringVar(&c.Out, "out", "", "directory for scale.json, scale.md, scale-lag.png (default: bench/results/scale-N)")
	fs.Int64Var(&c.MinAvailMiB, "min-available", 2048, "MiB of MemAvailable to keep: the ramp stops before (projected) or when (measured) it would go below")
	fs.Float64Var(&c.MaxFailPct, "max-fail-pct", 1, "stop the ramp after a step where more than this % of new connections failed")
	fs.BoolVar(&c.StopOnMiss, "stop-on-miss", true, "stop the ramp after a step where a push was missed or a connection lost")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Minute, "bound on the whole run")
}

// scaleStep is what one step measured.
type scaleStep struct {
	Target       int            `json:"target"`
	Open         int            `json:"open"`    // greeted and still open after dialing
	Greeted      int            `json:"greeted"` // new in this step
	Failed       int            `json:"failed"`  // new connections that failed
	Errors       map[string]int `json:"errors,omitempty"`
	DialS        float64        `json:"dial_s"`
	ConnectRate  float64        `json:"connect_rate"` // greeted / dial time
	PerServerMin int            `json:"per_server_min"`
	PerServerMax int            `json:"per_server_max"`

	ServerRSS        int64       `json:"server_rss_bytes"` // sum over server processes
	ServerRSSPerConn float64     `json:"server_rss_per_conn_bytes"`
	ClientRSS        int64       `json:"client_rss_bytes"`
	ClientRSSPerConn float64     `json:"client_rss_per_conn_bytes"`        // whole client RSS / open
	ClientGrowthConn float64     `json:"client_rss_growth_per_conn_bytes"` // growth since before dialing / open
	Mem              proc.SysMem `json:"mem"`
	SlabPerConn      float64     `json:"slab_per_conn_bytes"`
	// Slab bytes per connection (both ends) by cache, from /proc/slabinfo
	// active objects, and the TCP sockets the kernel added: 2 per
	// connection unless other work on the machine opened or closed some.
	SlabCaches   map[string]float64 `json:"slab_caches_per_conn_bytes,omitempty"`
	TCPSocketsUp int64              `json:"tcp_sockets_added"`
	// The most pages in TCP buffers seen while dialing (sampled each
	// second), against net.ipv4.tcp_mem: unread pushes and requests are
	// charged a page per socket, so a machine that falls behind fills it.
	TCPMemPeakPages int64   `json:"tcp_mem_peak_pages_dialing"`
	TCPMemPerConn   float64 `json:"tcp_mem_per_conn_bytes"`

	HoldS          float64 `json:"hold_s"`
	HoldConns      int     `json:"hold_conns"`
	ExpectedPer    int     `json:"expected_per_conn"`
	PushesExpected int64   `json:"pushes_expected"`
	PushesReceived int64   `json:"pushes_received"` // Σ min(count, expected)
	PushesExtra    int64   `json:"pushes_extra"`
	Missed         int     `json:"conns_missed_push"`
	Missing        int64   `json:"pushes_missing"`
	LostInHold     int     `json:"lost_in_hold"`
	Stale          int64   `json:"pushes_stale"`
	GapP50ms       float64 `json:"lag_p50_ms"` // |gap − interval|
	GapP99ms       float64 `json:"lag_p99_ms"`
	GapP999ms      float64 `json:"lag_p999_ms"`
	GapMaxMs       float64 `json:"lag_max_ms"`
	PhaseP50ms     float64 `json:"phase_lag_p50_ms"`
	PhaseP99ms     float64 `json:"phase_lag_p99_ms"`
	PhaseMaxMs     float64 `json:"phase_lag_max_ms"`
	ServerCPU      float64 `json:"server_cpu_s"` // in the window, summed over servers
	CPUPerPushUs   float64 `json:"server_cpu_per_push_us"`
	ClientCPU      float64 `json:"client_cpu_s"`
	// All CPUs' busy time in the window (/proc/stat), and what of it was
	// neither the servers nor the clients: other work on the machine
	// (and softirq time the kernel charged to no process).
	MachineBusy float64 `json:"machine_busy_s"`
	OthersCPU   float64 `json:"others_cpu_s"`
	// The clients' loops: the longest time between two wake-ups in the
	// window (the poll timeout is 10 ms), and the time in all gaps over
	// 50 ms, summed over processes. A stalled client sees pushes late.
	ClientStallMaxMs float64 `json:"client_stall_max_ms"`
	ClientStalledMs  float64 `json:"client_stalled_ms"`
	// Kernel TCP counters that moved while dialing and in the window.
	TCPDial map[string]int64 `json:"tcp_counters_dial,omitempty"`
	TCPHold map[string]int64 `json:"tcp_counters_hold,omitempty"`
	Held    bool             `json:"held"` // every connection greeted, no failure, none lost, every push delivered

	gapHist *hdr.Histogram
}

// scaleShutdown is what stopping everything showed.
type scaleShutdown struct {
	ServersExitS float64        `json:"servers_exit_s"` // SIGTERM to the last server's exit
	ServerErrors string         `json:"server_errors,omitempty"`
	Closes       map[string]int `json:"closes"` // how the clients' connections ended
	After        proc.SysMem    `json:"mem_after"`
	// From the servers' "wsmill stopped" lines, summed: upgraded,
	// rejected, pushes, pushes_skipped, left_open.
	ServerTotals map[string]int64 `json:"server_totals"`
	// Log lines at WARN or ERROR (the start-up warning about -origin
	// aside), summed over servers, by message.
	ServerWarnings map[string]int `json:"server_warnings,omitempty"`
}

type scaleResult struct {
	Workload     string            `json:"workload"`
	Command      string            `json:"command"`
	Host         map[string]string `json:"host"`
	N            int               `json:"n"`
	Servers      int               `json:"servers"`
	Clients      int               `json:"clients"`
	Sources      int               `json:"sources"`
	Addr         string            `json:"addr"`
	ServerArgs   []string          `json:"server_args"`
	GoMaxProcs   int               `json:"server_gomaxprocs"`
	ClientProcs  int               `json:"client_gomaxprocs"`
	IntervalMs   float64           `json:"interval_ms"`
	HoldS        float64           `json:"hold_s"`
	Base         proc.SysMem       `json:"mem_before"`
	TCPMemLimit  string            `json:"tcp_mem_limit_pages"` // net.ipv4.tcp_mem: min, pressure, max
	ServerRSS0   int64             `json:"server_rss_before_bytes"`
	ClientRSS0   int64             `json:"client_rss_before_bytes"`
	Steps        []*scaleStep      `json:"steps"`
	Largest      int               `json:"largest_held"` // open connections of the largest step that held
	Stopped      string            `json:"stopped,omitempty"`
	Lost         map[string]int    `json:"lost,omitempty"`
	Unexpected   map[string]int    `json:"unexpected,omitempty"`
	Shutdown     *scaleShutdown    `json:"shutdown,omitempty"`
	ElapsedS     float64           `json:"elapsed_s"`
	ConnectRate  float64           `json:"connect_rate"` // all greeted / all dial time
	ServerLogDir string            `json:"server_log_dir"`
}

// Command runs "wsload scale".
func Command(ctx context.Context, args []string) error {
	var cfg scaleConfig
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	cfg.register(fs)
	_, err := report.Command(ctx, fs, args, func(ctx context.Context) (*scaleResult, error) { return runScale(ctx, cfg) }, printScale)
	return err
}

// scaleRun is one run's moving parts.
type scaleRun struct {
	cfg     scaleConfig
	res     *scaleResult
	servers []*scaleServer
	clients []*scaleClient
	Events  chan scaleEvent
	Alive   int
	spids   []int
	cpids   []int
	logs    []string
	slab0   map[string][2]int64
	fds0    []int
}

func runScale(ctx context.Context, cfg scaleConfig) (*scaleResult, error) {
	if cfg.N < 1 || cfg.Interval <= 0 || cfg.PerClient < 1 || cfg.PerSrc < 1 || cfg.PerServer < 1 {
		return nil, errors.New("need -n, -interval, -per-client, -per-src and -per-server above 0")
	}
	if cfg.Hold <= 0 {
		cfg.Hold = 3 * cfg.Interval
	}
	if cfg.Hold < cfg.Interval {
		return nil, errors.New("-hold must be at least one -interval")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	t0 := time.Now()
	r := &scaleRun{cfg: cfg, Events: make(chan scaleEvent, 4096)}
	res := &scaleResult{Workload: "scale", Command: "wsload " + strings.Join(os.Args[1:], " "), Host: report.HostInfo(),
		N: cfg.N, IntervalMs: stats.Ms(cfg.Interval), HoldS: cfg.Hold.Seconds(), GoMaxProcs: cfg.GoMaxProcs, ClientProcs: cfg.ClientProcs,
		Lost: map[string]int{}, Unexpected: map[string]int{}}
	r.res = res
	if res.Servers = cfg.Servers; res.Servers <= 0 {
		res.Servers = ceilDiv(cfg.N, cfg.PerServer)
	}
	res.Clients = ceilDiv(cfg.N, cfg.PerClient)
	res.Sources = ceilDiv(cfg.N, cfg.PerSrc)
	if res.Sources > 250*250 {
		return nil, errors.New("too many source addresses: raise -per-src")
	}

	var benchDir string
	if cfg.Out == "" || cfg.ServerBin == "" {
		root, bd, err := target.FindRoot(cfg.Root)
		if err != nil {
			return nil, err
		}
		benchDir = bd
		if cfg.ServerBin == "" {
			tmp, err := os.MkdirTemp("", "wsload-scale-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(tmp)
			if cfg.ServerBin, err = target.Build(ctx, target.Spec{Label: "wsmill"}, root, benchDir, tmp); err != nil {
				return nil, err
			}
		}
	}
	if cfg.Out == "" {
		cfg.Out = filepath.Join(benchDir, "results", fmt.Sprintf("scale-%d", cfg.N))
	}
	r.cfg = cfg // the binary and the output directory are settled
	logDir, err := os.MkdirTemp("", "wsload-scale-logs-")
	if err != nil {
		return nil, err
	}
	res.ServerLogDir = logDir

	port, err := target.FreePort()
	if err != nil {
		return nil, err
	}
	res.Addr = "127.0.0.1:" + strconv.Itoa(port)
	res.ServerArgs = append([]string{"-addr", res.Addr, "-reuseport", "-push-interval", cfg.Interval.String(),
		"-max-conns", strconv.Itoa(cfg.MaxConns), "-workers", strconv.Itoa(cfg.Workers)}, strings.Fields(cfg.ServerFlags)...)
	if res.Base, err = proc.ReadSysMem(); err != nil {
		return nil, err
	}
	r.slab0, _ = proc.ReadSlabCaches() // nil when not root: the breakdown is left out
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_mem"); err == nil {
		res.TCPMemLimit = strings.Join(strings.Fields(string(b)), " ")
	}
	defer r.kill()
	if err := r.startServers(ctx); err != nil {
		return res, err
	}
	if err := r.startClients(); err != nil {
		return res, err
	}
	time.Sleep(200 * time.Millisecond) // let the clients' runtimes settle before the baseline
	if res.ServerRSS0, err = proc.SumRSS(r.spids); err != nil {
		return res, err
	}
	if res.ClientRSS0, err = proc.SumRSS(r.cpids); err != nil {
		return res, err
	}

	var targets []int
	for t := cfg.Step; cfg.Step > 0 && t < cfg.N; t += cfg.Step {
		targets = append(targets, t)
	}
	targets = append(targets, cfg.N)
	var dialS float64
	greeted := 0
	for i, target := range targets {
		st, err := r.runStep(ctx, target)
		if st != nil {
			res.Steps = append(res.Steps, st)
			dialS += st.DialS
			greeted += st.Greeted
			if st.Held {
				res.Largest = st.Open
			}
			if !cfg.Quiet {
				fmt.Fprintf(cli.Stderr, "step %d: %s\n", target, stepLine(st))
			}
		}
		if err != nil {
			res.Stopped = err.Error()
			break
		}
		if why := r.stopReason(st, targets, i); why != "" {
			res.Stopped = why
			break
		}
	}
	if dialS > 0 {
		res.ConnectRate = float64(greeted) / dialS
	}
	res.Shutdown = r.Shutdown()
	res.ElapsedS = time.Since(t0).Seconds()
	if werr := writeScale(res, cfg.Out); werr != nil {
		return res, werr
	}
	if len(res.Steps) == 0 {
		return res, fmt.Errorf("no step was measured: %s", res.Stopped)
	}
	if s := res.Steps[0]; !s.Held {
		return res, fmt.Errorf("the first step (%d) did not hold: %d of %d open, %d failed, %d lost, %d connections missed %d pushes",
			s.Target, s.Open, s.Target, s.Failed, s.LostInHold, s.Missed, s.Missing)
	}
	return res, nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// srcAddrs lists n loopback source addresses from 127.0.0.2 on.
func srcAddrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		v := 2 + i // 127.0.0.2 ... 127.0.0.254, then 127.0.1.1...
		b, c := v/254, v%254
		if c == 0 {
			c = 254
			b--
		}
		out[i] = fmt.Sprintf("127.0.%d.%d", b, c)
	}
	return out
}

func (r *scaleRun) startServers(ctx context.Context) error {
	cfg := r.cfg
	if !cfg.Quiet {
		fmt.Fprintf(cli.Stderr, "starting %d wsmill processes on %s (GOMAXPROCS=%d, -workers %d)...\n", r.res.Servers, r.res.Addr, cfg.GoMaxProcs, cfg.Workers)
	}
	for i := 0; i < r.res.Servers; i++ {
		s, err := startScaleServer(i, cfg.ServerBin, r.res.ServerArgs, cfg.GoMaxProcs, filepath.Join(r.res.ServerLogDir, fmt.Sprintf("wsmill-%d.log", i)))
		if err != nil {
			return err
		}
		r.servers = append(r.servers, s)
		r.spids = append(r.spids, s.Pid)
		r.logs = append(r.logs, s.logPath)
	}
	for _, s := range r.servers {
		if err := s.waitStarted(ctx, 20*time.Second); err != nil {
			return err
		}
	}
	for _, s := range r.servers {
		n, err := proc.CountFDs(s.Pid)
		if err != nil {
			return err
		}
		r.fds0 = append(r.fds0, n)
	}
	return nil
}

func (r *scaleRun) startClients() error {
	src := srcAddrs(r.res.Sources)
	off := 0
	for i := 0; i < r.res.Clients; i++ {
		n := share(r.cfg.N, r.res.Clients, i)
		spec := scaleSpec{Index: i, Addr: r.res.Addr, Src: src, Offset: off, Interval: r.cfg.Interval,
			DialConc: r.cfg.DialConc, DialTimeout: r.cfg.DialTimeout}
		off += n
		c, err := startScaleClient(spec, r.cfg.ClientProcs, r.Events)
		if err != nil {
			return err
		}
		c.n = n
		r.clients = append(r.clients, c)
		r.cpids = append(r.cpids, c.Pid)
		r.Alive++
	}
	return nil
}

// share is part i of total split over n as evenly as possible.
func share(total, n, i int) int {
	s := total / n
	if i < total%n {
		s++
	}
	return s
}

func (r *scaleRun) Broadcast(c scaleCmd) error {
	var errs []error
	for _, cl := range r.clients {
		if err := cl.send(c); err != nil {
			errs = append(errs, fmt.Errorf("client %d: %w", cl.idx, err))
		}
	}
	return errors.Join(errs...)
}

// collect waits for one event of type typ from every client process,
// calling each (when set) for the other events, e.g. progress.
func (r *scaleRun) Collect(ctx context.Context, typ string, timeout time.Duration, each func(scaleEvent), tick func()) (map[int]scaleEvent, error) {
	return r.collectInto(ctx, map[int]scaleEvent{}, typ, timeout, each, tick)
}

// errCollectTimeout is collect's error when the time ran out.
var errCollectTimeout = errors.New("timed out")

// collectInto is collect adding to got, the events already received.
func (r *scaleRun) collectInto(ctx context.Context, got map[int]scaleEvent, typ string, timeout time.Duration, each func(scaleEvent), tick func()) (map[int]scaleEvent, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for len(got) < len(r.clients) {
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-deadline.C:
			return got, fmt.Errorf("%w: %d of %d client processes sent no %q within %v", errCollectTimeout, len(r.clients)-len(got), len(r.clients), typ, timeout)
		case <-t.C:
			if tick != nil {
				tick()
			}
		case e := <-r.Events:
			switch e.Type {
			case typ:
				got[e.Worker] = e
			case "fatal":
				return got, fmt.Errorf("client %d: %s", e.Worker, e.Err)
			case "exit":
				r.Alive--
				if _, ok := got[e.Worker]; !ok {
					return got, fmt.Errorf("client %d ended before sending %q", e.Worker, typ)
				}
			default:
				if each != nil {
					each(e)
				}
			}
		}
	}
	return got, nil
}

// runStep dials up to target connections in all, then measures a window.
func (r *scaleRun) runStep(ctx context.Context, target int) (*scaleStep, error) {
	cfg := r.cfg
	st := &scaleStep{Target: target, Errors: map[string]int{}}
	if !cfg.Quiet {
		fmt.Fprintf(cli.Stderr, "dialing up to %d connections over %d client processes and %d source addresses...\n", target, len(r.clients), r.res.Sources)
	}
	prevOpen := 0
	if n := len(r.res.Steps); n > 0 {
		prevOpen = r.res.Steps[n-1].Open
	}
	for _, cl := range r.clients {
		if err := cl.send(scaleCmd{Cmd: "dial", N: share(target, len(r.clients), cl.idx)}); err != nil {
			return nil, err
		}
	}
	prog := map[int][2]int{}
	tcp0, err := proc.ReadTCPCounters()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	// stopErr ends the ramp after this step, which is still measured with
	// the connections it has: the clients stop dialing and report once
	// their connects in flight have ended.
	var stopErr error
	stopDial := func(why error) {
		if stopErr == nil {
			stopErr = why
			r.Broadcast(scaleCmd{Cmd: "stop"})
		}
	}
	progress := func(e scaleEvent) {
		if e.Type == "progress" {
			prog[e.Worker] = [2]int{e.OK, e.Fail}
		}
	}
	budget := cfg.DialBudget
	if budget <= 0 {
		budget = 2*cfg.DialTimeout + time.Duration(target-prevOpen)*2*time.Millisecond + 30*time.Second
	}
	dialed, err := r.Collect(ctx, "dialed", budget, progress, func() {
		if !cfg.Quiet {
			ok, fail := 0, 0
			for _, v := range prog {
				ok, fail = ok+v[0], fail+v[1]
			}
			fleet.DrawBar(prevOpen+ok, fail, target, time.Since(start), false)
		}
		m, err := proc.ReadSysMem()
		if err == nil {
			st.TCPMemPeakPages = max(st.TCPMemPeakPages, m.TCPMemPages)
		}
		if err == nil && m.MemAvailable < cfg.MinAvailMiB<<20 {
			stopDial(fmt.Errorf("memory: MemAvailable %d MiB < -min-available %d MiB while dialing", m.MemAvailable>>20, cfg.MinAvailMiB))
		}
	})
	if errors.Is(err, errCollectTimeout) {
		ok, fail := 0, 0
		for _, v := range prog {
			ok, fail = ok+v[0], fail+v[1]
		}
		stopDial(fmt.Errorf("time: %d of %d connections open (%d failed) when dialing had taken %v", prevOpen+ok, target, fail, budget))
		dialed, err = r.collectInto(ctx, dialed, "dialed", cfg.DialTimeout+30*time.Second, progress, nil)
	}
	if err != nil {
		return nil, err
	}
	var d0, d1 int64
	for _, e := range dialed {
		st.Greeted += e.OK
		st.Failed += e.Fail
		st.Open += e.Open
		for k, v := range e.Errors {
			st.Errors[k] += v
		}
		if d0 == 0 || e.DialStart < d0 {
			d0 = e.DialStart
		}
		d1 = max(d1, e.DialEnd)
	}
	if !cfg.Quiet {
		fleet.DrawBar(st.Open, st.Failed, target, time.Since(start), true)
	}
	if tcp1, err := proc.ReadTCPCounters(); err == nil {
		st.TCPDial = proc.CounterDelta(tcp0, tcp1)
	}
	st.DialS = float64(d1-d0) / 1e9
	if st.DialS > 0 {
		st.ConnectRate = float64(st.Greeted) / st.DialS
	}
	if st.Open == 0 {
		return st, fmt.Errorf("no connection open: %v", st.Errors)
	}
	if err := r.sample(st); err != nil {
		return st, err
	}
	if err := r.hold(ctx, st); err != nil {
		return st, err
	}
	st.Held = st.Failed == 0 && st.LostInHold == 0 && st.Missed == 0 && st.Open == target && st.HoldConns == target
	if stopErr != nil {
		return st, stopErr
	}
	return st, nil
}

// sample takes the step's memory figures after a second of quiet.
func (r *scaleRun) sample(st *scaleStep) error {
	time.Sleep(time.Second)
	var err error
	if st.ServerRSS, err = proc.SumRSS(r.spids); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if st.ClientRSS, err = proc.SumRSS(r.cpids); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if st.Mem, err = proc.ReadSysMem(); err != nil {
		return err
	}
	n := float64(st.Open)
	st.ServerRSSPerConn = float64(st.ServerRSS-r.res.ServerRSS0) / n
	st.ClientRSSPerConn = float64(st.ClientRSS) / n
	st.ClientGrowthConn = float64(st.ClientRSS-r.res.ClientRSS0) / n
	st.SlabPerConn = float64(st.Mem.Slab-r.res.Base.Slab) / n
	st.TCPMemPerConn = float64((st.Mem.TCPMemPages-r.res.Base.TCPMemPages)*4096) / n
	if sc, err := proc.ReadSlabCaches(); err == nil && r.slab0 != nil {
		st.SlabCaches = map[string]float64{}
		for k, v := range sc {
			st.SlabCaches[k] = float64(v[0]*v[1]-r.slab0[k][0]*r.slab0[k][1]) / n
		}
		st.TCPSocketsUp = sc["TCP"][0] - r.slab0["TCP"][0]
	}
	st.PerServerMin = -1
	for i, s := range r.servers {
		fds, err := proc.CountFDs(s.Pid)
		if err != nil {
			return fmt.Errorf("server %d: %w", i, err)
		}
		c := fds - r.fds0[i]
		if st.PerServerMin < 0 || c < st.PerServerMin {
			st.PerServerMin = c
		}
		st.PerServerMax = max(st.PerServerMax, c)
	}
	return nil
}

// hold measures one window of pushes on every open connection.
func (r *scaleRun) hold(ctx context.Context, st *scaleStep) error {
	cfg := r.cfg
	ws := time.Now().Add(300 * time.Millisecond)
	we := ws.Add(cfg.Hold)
	if err := r.Broadcast(scaleCmd{Cmd: "hold", Start: ws.UnixNano(), End: we.UnixNano()}); err != nil {
		return err
	}
	if !cfg.Quiet {
		fmt.Fprintf(cli.Stderr, "holding %d connections for %v...\n", st.Open, cfg.Hold)
	}
	if err := proc.Sleep(ctx, time.Until(ws)); err != nil {
		return err
	}
	s0, err1 := proc.SumCPU(r.spids)
	c0, err2 := proc.SumCPU(r.cpids)
	m0, err3 := proc.CPUBusy()
	p0 := proc.RusageCPU(syscall.RUSAGE_SELF)
	tcp0, err4 := proc.ReadTCPCounters()
	if err := proc.Sleep(ctx, time.Until(we)); err != nil {
		return err
	}
	s1, err5 := proc.SumCPU(r.spids)
	c1, err6 := proc.SumCPU(r.cpids)
	m1, err7 := proc.CPUBusy()
	p1 := proc.RusageCPU(syscall.RUSAGE_SELF)
	tcp1, err8 := proc.ReadTCPCounters()
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8); err != nil {
		return err
	}
	st.ServerCPU, st.ClientCPU, st.MachineBusy = s1-s0, c1-c0, m1-m0
	st.OthersCPU = max(st.MachineBusy-st.ServerCPU-st.ClientCPU-(p1-p0), 0)
	st.TCPHold = proc.CounterDelta(tcp0, tcp1)
	held, err := r.Collect(ctx, "held", cfg.Interval+60*time.Second, nil, nil)
	if err != nil {
		return err
	}
	gap, phase := stats.GapHist(), stats.GapHist()
	var inWin, gapMax, phaseMax int64
	for _, e := range held {
		h := e.Hold
		if h == nil {
			return fmt.Errorf("client %d: empty hold report", e.Worker)
		}
		st.HoldConns += h.Conns
		st.ExpectedPer = h.Expected
		st.PushesExpected += int64(h.Conns) * int64(h.Expected)
		st.PushesReceived += h.Received
		st.PushesExtra += h.Extra
		st.Missed += h.Missed
		st.Missing += h.Missing
		st.LostInHold += h.Lost
		st.Stale += h.Stale
		st.ClientStallMaxMs = max(st.ClientStallMaxMs, float64(h.StallMaxNs)/1e6)
		st.ClientStalledMs += float64(h.StalledNs) / 1e6
		inWin += h.InWindow
		gapMax, phaseMax = max(gapMax, h.GapMaxNs), max(phaseMax, h.PhaseMaxNs)
		for _, x := range []struct {
			dst *hdr.Histogram
			enc string
		}{{gap, h.GapHist}, {phase, h.PhaseHist}} {
			d, err := hdr.Decode([]byte(x.enc))
			if err != nil {
				return fmt.Errorf("client %d histogram: %w", e.Worker, err)
			}
			x.dst.Merge(d)
		}
	}
	r.mergeLost(held)
	st.HoldS = cfg.Hold.Seconds()
	st.GapP50ms = float64(gap.ValueAtQuantile(50)) / 1000
	st.GapP99ms = float64(gap.ValueAtQuantile(99)) / 1000
	st.GapP999ms = float64(gap.ValueAtQuantile(99.9)) / 1000
	st.GapMaxMs = float64(gapMax) / 1e6
	st.PhaseP50ms = float64(phase.ValueAtQuantile(50)) / 1000
	st.PhaseP99ms = float64(phase.ValueAtQuantile(99)) / 1000
	st.PhaseMaxMs = float64(phaseMax) / 1e6
	if inWin > 0 {
		st.CPUPerPushUs = st.ServerCPU / float64(inWin) * 1e6
	}
	st.gapHist = gap
	return nil
}

// mergeLost sets the run's lost counts from the clients' cumulative ones.
func (r *scaleRun) mergeLost(evs map[int]scaleEvent) {
	tot := map[string]int{}
	for _, e := range evs {
		for k, v := range e.Lost {
			tot[k] += v
		}
	}
	r.res.Lost = tot
}

// stopReason says why the ramp should stop after step i ("" to go on).
func (r *scaleRun) stopReason(st *scaleStep, targets []int, i int) string {
	cfg := r.cfg
	if st.Greeted+st.Failed > 0 && float64(st.Failed) > cfg.MaxFailPct/100*float64(st.Greeted+st.Failed) {
		return fmt.Sprintf("connect failures at %d: %d of %d new connections (%s)", st.Target, st.Failed, st.Greeted+st.Failed, topErrors(st.Errors, 3))
	}
	if cfg.StopOnMiss && (st.Missed > 0 || st.LostInHold > 0) {
		return fmt.Sprintf("pushes missed at %d: %d connections missed %d pushes, %d lost", st.Open, st.Missed, st.Missing, st.LostInHold)
	}
	if i+1 < len(targets) && st.Open > 0 {
		// Memory the run has taken so far, per connection, times the
		// connections still to come.
		per := float64(r.res.Base.MemAvailable-st.Mem.MemAvailable) / float64(st.Open)
		need := int64(per * float64(targets[i+1]-st.Open))
		if st.Mem.MemAvailable-need < cfg.MinAvailMiB<<20 {
			return fmt.Sprintf("memory: the next step (%d) would need about %d MiB at %.0f B per connection; MemAvailable is %d MiB and -min-available %d MiB",
				targets[i+1], need>>20, per, st.Mem.MemAvailable>>20, cfg.MinAvailMiB)
		}
	}
	return ""
}

func topErrors(m map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	var parts []string
	for i := 0; i < len(l) && i < n; i++ {
		parts = append(parts, fmt.Sprintf("%d × %s", l[i].v, l[i].k))
	}
	return strings.Join(parts, ", ")
}

// shutdown stops the servers with SIGTERM while the clients answer their
// Close frames, then closes the clients.
func (r *scaleRun) Shutdown() *scaleShutdown {
	sd := &scaleShutdown{Closes: map[string]int{}}
	if !r.cfg.Quiet {
		fmt.Fprintf(cli.Stderr, "stopping %d servers (SIGTERM) and %d client processes...\n", len(r.servers), len(r.clients))
	}
	r.Broadcast(scaleCmd{Cmd: "shutdown"})
	if _, err := r.Collect(context.Background(), "shutdown", 30*time.Second, nil, nil); err != nil {
		sd.ServerErrors = "clients: " + err.Error()
	}
	// Each server drains for its -drain-timeout, but closing ~19,000
	// connections per process on a saturated machine takes longer.
	d, err := stopServers(r.servers, 90*time.Second)
	sd.ServersExitS = d.Seconds()
	if err != nil {
		sd.ServerErrors = strings.TrimSpace(sd.ServerErrors + "\n" + err.Error())
	}
	sd.ServerTotals, sd.ServerWarnings = summarizeLogs(r.logs)
	if sd.ServerErrors == "" {
		os.RemoveAll(r.res.ServerLogDir)
		r.res.ServerLogDir = ""
	}
	r.servers = nil
	time.Sleep(500 * time.Millisecond) // the clients read the last EOFs
	r.Broadcast(scaleCmd{Cmd: "close"})
	closed, err := r.Collect(context.Background(), "closed", 30*time.Second, nil, nil)
	if err != nil {
		sd.ServerErrors = strings.TrimSpace(sd.ServerErrors + "\nclients: " + err.Error())
	}
	for _, e := range closed {
		for k, v := range e.Closes {
			sd.Closes[k] += v
		}
		for k, v := range e.Unexpected {
			r.res.Unexpected[k] += v
		}
		if e.Open > 0 {
			sd.Closes["still open at close"] += e.Open
		}
	}
	r.mergeLost(closed)
	r.endClients(15 * time.Second)
	time.Sleep(time.Second)
	sd.After, _ = proc.ReadSysMem()
	return sd
}

// endClients closes the clients' stdin and waits for them, then kills.
func (r *scaleRun) endClients(grace time.Duration) {
	for _, c := range r.clients {
		c.stdin.Close()
	}
	deadline := time.After(grace)
	for _, c := range r.clients {
		select {
		case <-c.exited:
		case <-deadline:
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
	r.clients = nil
}

// kill ends whatever is still running (an early return).
func (r *scaleRun) kill() {
	for _, s := range r.servers {
		s.cmd.Process.Kill()
		<-s.exited
		s.log.Close()
	}
	r.servers = nil
	for _, c := range r.clients {
		c.cmd.Process.Kill()
		<-c.exited
	}
	r.clients = nil
}

// summarizeLogs sums the servers' "wsmill stopped" totals and counts
// their warnings by message.
func summarizeLogs(paths []string) (map[string]int64, map[string]int) {
	totals := map[string]int64{}
	warns := map[string]int{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			switch {
			case strings.Contains(line, `msg="wsmill stopped"`):
				for _, f := range strings.Fields(line) {
					if k, v, ok := strings.Cut(f, "="); ok {
						if n, err := strconv.ParseInt(v, 10, 64); err == nil {
							totals[k] += n
						}
					}
				}
			case strings.Contains(line, "every Origin is allowed"):
			case strings.Contains(line, "level=WARN"), strings.Contains(line, "level=ERROR"):
				_, msg, _ := strings.Cut(line, "msg=")
				warns[wsclient.Truncate(msg, 100)]++
			}
		}
	}
	return totals, warns
}

func stepLine(s *scaleStep) string {
	return fmt.Sprintf("open %d (+%d, %d failed) at %.0f/s; server %.0f B/conn, slab %.0f B/conn, client %.0f B/conn; pushes %d/%d, %d conns missed; lag p50 %.2f p99 %.2f max %.1f ms; %.2f µs CPU/push; CPU s in window: servers %.1f, clients %.1f, other %.1f; client stall max %.0f ms",
		s.Open, s.Greeted, s.Failed, s.ConnectRate, s.ServerRSSPerConn, s.SlabPerConn, s.ClientRSSPerConn,
		s.PushesReceived, s.PushesExpected, s.Missed, s.GapP50ms, s.GapP99ms, s.GapMaxMs, s.CPUPerPushUs,
		s.ServerCPU, s.ClientCPU, s.OthersCPU, s.ClientStallMaxMs)
}

func printScale(w io.Writer, r *scaleResult) {
	t := report.NewTable(w)
	t.Row("servers / client processes / source addresses", fmt.Sprintf("%d / %d / %d on %s", r.Servers, r.Clients, r.Sources, r.Addr))
	t.Row("push interval / hold per step", fmt.Sprintf("%.0f ms / %.1f s", r.IntervalMs, r.HoldS))
	for _, s := range r.Steps {
		t.Row(fmt.Sprintf("step %d", s.Target), stepLine(s))
	}
	t.Row("largest N held (every push)", strconv.Itoa(r.Largest))
	if r.Stopped != "" {
		t.Row("stopped", r.Stopped)
	}
	t.Row("connect rate (all steps)", fmt.Sprintf("%.0f conns/s", r.ConnectRate))
	if sd := r.Shutdown; sd != nil {
		t.Row("shutdown", fmt.Sprintf("servers exited %.2f s after SIGTERM; %s", sd.ServersExitS, topErrors(sd.Closes, 4)))
		t.Row("server totals", fmt.Sprintf("%v", sd.ServerTotals))
		if sd.ServerErrors != "" {
			t.Row("shutdown errors", sd.ServerErrors)
		}
		if len(sd.ServerWarnings) > 0 {
			t.Row("server warnings", topErrors(sd.ServerWarnings, 5))
		}
	}
	if len(r.Lost) > 0 {
		t.Row("lost (server dropped)", topErrors(r.Lost, 5))
	}
	if len(r.Unexpected) > 0 {
		t.Row("unexpected frames", topErrors(r.Unexpected, 5))
	}
	t.Flush()
}
