package push

// push: how regular the server's time pushes are, over many connections,
// optionally with some slow clients that never read.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/internal/stats"
	"github.com/wsmill/wsmill/bench/internal/wsclient"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Config is one push run.
type Config struct {
	cli.Target
	fleet.Dialing
	N         int
	Interval  time.Duration
	Duration  time.Duration
	SlowPct   float64
	SlowBuf   int
	SlowEvery time.Duration
	SlowSize  int
	Quiet     bool
}

func (c *Config) register(fs *flag.FlagSet) {
	fs.IntVar(&c.N, "n", 1000, "connections")
	fs.DurationVar(&c.Interval, "interval", time.Second, "the server's push interval (its -push-interval)")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured window")
	fs.Float64Var(&c.SlowPct, "slow-pct", 0, "percentage of connections that never read but send 1 KiB every 10 ms")
	fs.IntVar(&c.SlowBuf, "slow-rcvbuf", 4096, "SO_RCVBUF of the slow connections")
	fs.DurationVar(&c.SlowEvery, "slow-every", 10*time.Millisecond, "a slow connection sends one message this often")
	fs.IntVar(&c.SlowSize, "slow-size", 1024, "bytes of each slow connection's message")
	c.Dialing.Register(fs, 0, "0: one per 9,000 connections", true)
}

// Command runs "wsload push".
func Command(ctx context.Context, args []string) error {
	var cfg Config
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	cfg.Target.Register(fs, "RSS and CPU")
	cfg.register(fs)
	_, err := report.Command(ctx, fs, args, func(ctx context.Context) (*Result, error) { return Run(ctx, cfg) }, Print)
	return err
}

// pushWorkerPart is one worker's share of the push result.
type pushWorkerPart struct {
	Normal     int            `json:"normal"`   // normal connections open at the window's start
	Expected   int            `json:"expected"` // pushes each should get in the window
	Complete   int            `json:"complete"` // normal connections that got at least that many
	Missing    int64          `json:"missing"`  // pushes short, summed over connections
	Pushes     int64          `json:"pushes"`   // pushes counted in the window (normal connections)
	Gaps       int64          `json:"gaps"`     // gaps measured
	MaxDevNs   int64          `json:"max_dev_ns"`
	Hist       string         `json:"hist"` // |gap - interval| in µs
	Lost       int            `json:"lost"` // normal connections that ended during the window
	Slow       int            `json:"slow"` // slow connections open at the window's start
	SlowClosed int            `json:"slow_closed"`
	SlowLate   int            `json:"slow_closed_after"` // found closed only after the window
	SlowSent   int64          `json:"slow_sent"`
	Errors     map[string]int `json:"errors,omitempty"`
}

// Result is the RESULT of a push run.
type Result struct {
	Workload      string         `json:"workload"`
	Server        string         `json:"server,omitempty"`
	N             int            `json:"n"`
	Procs         int            `json:"procs"`
	Connected     int            `json:"connected"`
	Failed        int            `json:"failed"`
	IntervalMs    float64        `json:"interval_ms"`
	Seconds       float64        `json:"seconds"`
	Normal        int            `json:"normal"`
	Expected      int            `json:"expected_per_conn"`
	Pushes        int64          `json:"pushes"`
	Gaps          int64          `json:"gaps"`
	P50ms         float64        `json:"push_p50_ms"`
	P99ms         float64        `json:"push_p99_ms"`
	MaxMs         float64        `json:"push_max_ms"`
	CompletePct   float64        `json:"complete_pct"`
	Missing       int64          `json:"missing"`
	Lost          int            `json:"lost"`
	Slow          int            `json:"slow"`
	SlowClosed    int            `json:"slow_closed"`
	SlowLate      int            `json:"slow_closed_after"`
	SlowSent      int64          `json:"slow_sent"`
	Errors        map[string]int `json:"errors,omitempty"`
	Warning       string         `json:"warning,omitempty"`
	RSSBefore     int64          `json:"rss_before"`
	RSSConnected  int64          `json:"rss_connected"`
	RSSAfter      int64          `json:"rss_after"`
	ServerCPU     float64        `json:"server_cpu_s"`
	ServerThreads int            `json:"server_threads"`
}

// isSlow spreads pct% of the global indexes evenly: g is slow when
// floor((g+1)·pct/100) > floor(g·pct/100).
func isSlow(g int, pct float64) bool {
	if pct <= 0 {
		return false
	}
	return math.Floor(float64(g+1)*pct/100) > math.Floor(float64(g)*pct/100)
}

// Run opens cfg.N connections and measures the pushes they get.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.N < 1 || cfg.Interval <= 0 || cfg.Duration < cfg.Interval {
		return nil, fmt.Errorf("need -n ≥ 1, -interval > 0 and -duration ≥ -interval")
	}
	if cfg.SlowPct < 0 || cfg.SlowPct >= 100 {
		return nil, fmt.Errorf("-slow-pct must be in [0, 100)")
	}
	procs := fleet.SplitProcs(cfg.N, cfg.Procs)
	res := &Result{Workload: "push", N: cfg.N, Procs: procs, IntervalMs: stats.Ms(cfg.Interval), Seconds: cfg.Duration.Seconds(), Errors: map[string]int{}}
	var srv0 float64
	if cfg.PID > 0 {
		ps, err := proc.ReadStat(cfg.PID)
		if err != nil {
			return nil, err
		}
		res.RSSBefore = ps.RSS
	}
	spec := cfg.Dialing.Spec("push", cfg.Addr)
	spec.Greeting, spec.ReadBuf = true, 1024
	spec.Interval, spec.SlowPct, spec.SlowBuf, spec.SlowEvery, spec.SlowSize = cfg.Interval, cfg.SlowPct, cfg.SlowBuf, cfg.SlowEvery, cfg.SlowSize
	p, sum, err := fleet.OpenPool(ctx, spec, fleet.PoolOptions{Total: cfg.N, Procs: procs, Rate: cfg.Rate}, !cfg.Quiet)
	if err != nil {
		return nil, err
	}
	defer p.Shutdown(3 * time.Second)
	res.Connected, res.Failed = sum.OK, sum.Fail
	fleet.AddDialErrors(res.Errors, sum)
	// Let every connection get its first push before the window opens.
	if err := proc.Sleep(ctx, cfg.Interval); err != nil {
		return nil, err
	}
	if cfg.PID > 0 {
		ps, err := proc.ReadStat(cfg.PID)
		if err != nil {
			return nil, err
		}
		res.RSSConnected = ps.RSS
		srv0 = ps.CPU
	}
	if err := p.Broadcast(fleet.Command{Cmd: "start", Duration: cfg.Duration}); err != nil {
		return nil, err
	}
	if !cfg.Quiet {
		fmt.Fprintf(cli.Stderr, "measuring pushes for %v...\n", cfg.Duration)
	}
	parts, err := p.Collect(ctx, "result", cfg.Duration+cfg.Interval+60*time.Second)
	if err != nil {
		return nil, err
	}
	if cfg.PID > 0 {
		ps, err := proc.ReadStat(cfg.PID)
		if err != nil {
			return nil, err
		}
		res.RSSAfter = ps.RSS
		res.ServerCPU = ps.CPU - srv0
		res.ServerThreads = ps.Threads
	}
	h := stats.GapHist()
	var complete int
	var maxDev int64
	for _, e := range parts {
		r, err := fleet.DecodePart[pushWorkerPart](e)
		if err != nil {
			return nil, err
		}
		res.Normal += r.Normal
		res.Expected = r.Expected
		complete += r.Complete
		res.Missing += r.Missing
		res.Pushes += r.Pushes
		res.Gaps += r.Gaps
		res.Lost += r.Lost
		res.Slow += r.Slow
		res.SlowClosed += r.SlowClosed
		res.SlowLate += r.SlowLate
		res.SlowSent += r.SlowSent
		maxDev = max(maxDev, r.MaxDevNs)
		for k, v := range r.Errors {
			res.Errors[k] += v
		}
		wh, err := hdr.Decode([]byte(r.Hist))
		if err != nil {
			return nil, fmt.Errorf("worker %d histogram: %w", e.Worker, err)
		}
		h.Merge(wh)
	}
	if _, err := p.CloseAll(30 * time.Second); err != nil {
		return nil, err
	}
	res.P50ms = float64(h.ValueAtQuantile(50)) / 1000
	res.P99ms = float64(h.ValueAtQuantile(99)) / 1000
	res.MaxMs = float64(maxDev) / 1e6
	if res.Normal > 0 {
		res.CompletePct = 100 * float64(complete) / float64(res.Normal)
	}
	if res.Normal > 0 && res.Expected > 0 {
		per := float64(res.Pushes) / float64(res.Normal)
		if per > 1.5*float64(res.Expected)+1 || per < 0.5*float64(res.Expected) {
			res.Warning = fmt.Sprintf("%.1f pushes per connection for %d expected: is the server's -push-interval %v?", per, res.Expected, cfg.Interval)
		}
	}
	if res.Gaps == 0 {
		return res, fmt.Errorf("no push gap was measured (is the server pushing every %v?)", cfg.Interval)
	}
	return res, nil
}

// Print writes r as a table.
func Print(w io.Writer, r *Result) {
	t := report.NewTable(w)
	t.Row("connections requested / connected / failed", fmt.Sprintf("%d / %d / %d (%d client processes)", r.N, r.Connected, r.Failed, r.Procs))
	t.Row("window / interval", fmt.Sprintf("%.1f s / %.0f ms (%d pushes expected per connection)", r.Seconds, r.IntervalMs, r.Expected))
	t.Row("normal connections", fmt.Sprintf("%d, %d pushes, %d gaps measured", r.Normal, r.Pushes, r.Gaps))
	t.Row("|gap − interval| p50 / p99 / max", fmt.Sprintf("%.3f / %.3f / %.3f ms", r.P50ms, r.P99ms, r.MaxMs))
	t.Row("connections with every push", fmt.Sprintf("%.2f%% (%d pushes missing in all)", r.CompletePct, r.Missing))
	t.Row("normal connections lost", strconv.Itoa(r.Lost))
	if r.Slow > 0 {
		t.Row("slow connections", fmt.Sprintf("%d, sent %d messages in all", r.Slow, r.SlowSent))
		t.Row("slow closed by server (in window / after)", fmt.Sprintf("%d / %d (still open: %d)", r.SlowClosed, r.SlowLate, r.Slow-r.SlowClosed-r.SlowLate))
	}
	if r.RSSBefore > 0 {
		t.Row("server RSS before / connected / after", fmt.Sprintf("%s / %s / %s", proc.MiB(r.RSSBefore), proc.MiB(r.RSSConnected), proc.MiB(r.RSSAfter)))
		t.Row("server CPU in window / threads", fmt.Sprintf("%.2f s / %d", r.ServerCPU, r.ServerThreads))
	}
	for k, v := range r.Errors {
		t.Row("  error", fmt.Sprintf("%d × %s", v, k))
	}
	if r.Warning != "" {
		t.Row("WARNING", r.Warning)
	}
	t.Flush()
}

// pushConn is one normal connection's push record (touched only by its reader,
// then read once the window is over).
type pushConn struct {
	last  int64 // arrival of the previous push, ns since base
	count atomic.Int64
	ended atomic.Bool
	open  bool // open when the window started (set before the window opens)
}

// Worker runs one client process's connections: a reader per normal
// connection timing the pushes, a writer per slow one.
func Worker(ctx context.Context, spec fleet.Spec, cmds <-chan fleet.Command, emit func(fleet.Event)) error {
	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) }
	iv := int64(spec.Interval)
	grace := iv / 2
	var w0, w1 atomic.Int64 // window, ns since base; 0 = not open yet

	var (
		hmu    sync.Mutex
		hist   = stats.GapHist()
		gaps   int64
		maxDev int64
		emu    sync.Mutex
		errs   = map[string]int{}
		lost   atomic.Int64
		closed atomic.Bool
	)
	pcs := make([]*pushConn, spec.N)
	slow := make([]bool, spec.N)
	for i := range slow {
		slow[i] = isSlow(spec.Offset+i, spec.SlowPct)
	}
	reader := func(pc *pushConn, c *wsclient.Conn) {
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				pc.ended.Store(true)
				if !closed.Load() {
					if ws := w0.Load(); ws != 0 && now() < w1.Load()+grace {
						lost.Add(1)
						emu.Lock()
						errs["lost: "+wsclient.ErrClass(err)]++
						emu.Unlock()
					}
				}
				return
			}
			if !wsclient.IsPush(op, p) {
				continue
			}
			t := now()
			ws, we := w0.Load(), w1.Load()
			if ws == 0 || t < ws {
				pc.last = t
				continue
			}
			if t >= we+grace {
				continue
			}
			pc.count.Add(1)
			if pc.last >= ws {
				dev := t - pc.last - iv
				if dev < 0 {
					dev = -dev
				}
				hmu.Lock()
				hist.RecordValue(max(dev/1000, 1))
				gaps++
				maxDev = max(maxDev, dev)
				hmu.Unlock()
			}
			pc.last = t
		}
	}
	plan := fleet.DialPlan{
		Opts: func(i int) wsclient.Options {
			o := spec.DefaultOpts(i)
			if slow[i] {
				o.RcvBuf = spec.SlowBuf
			}
			return o
		},
		Connected: func(i int, c *wsclient.Conn) {
			if slow[i] {
				return // never reads after the greeting
			}
			pc := &pushConn{}
			pcs[i] = pc
			go reader(pc, c)
		},
	}
	conns := fleet.DialAll(ctx, spec, plan, emit)
	defer fleet.CloseConns(conns)
	defer closed.Store(true)
	cmd, ok := fleet.WaitCmd(ctx, cmds, "start")
	if !ok {
		emit(fleet.Event{Type: "done"})
		return nil
	}
	part := &pushWorkerPart{Expected: int(int64(cmd.Duration) / iv)}
	for i, c := range conns {
		switch {
		case c == nil:
		case slow[i]:
			part.Slow++
		case !pcs[i].ended.Load():
			pcs[i].open = true
			part.Normal++
		}
	}
	start := now()
	w1.Store(start + int64(cmd.Duration))
	w0.Store(start)
	end := base.Add(time.Duration(start + int64(cmd.Duration) + grace))

	// Slow connections: 1 KiB binary every 10 ms until the window closes or
	// the server drops them.
	var slowClosed atomic.Int64
	var slowSent atomic.Int64
	slowDead := make([]atomic.Bool, spec.N)
	var sw sync.WaitGroup
	stopSlow := make(chan struct{})
	msg := make([]byte, max(spec.SlowSize, 1))
	for i := range msg {
		msg[i] = byte(i)
	}
	for i, c := range conns {
		if c == nil || !slow[i] {
			continue
		}
		sw.Add(1)
		go func() {
			defer sw.Done()
			c.NC.SetWriteDeadline(end)
			t := time.NewTicker(max(spec.SlowEvery, time.Millisecond))
			defer t.Stop()
			for {
				select {
				case <-stopSlow:
					return
				case <-t.C:
				}
				if err := c.WriteFrame(wsclient.OpBinary, msg); err != nil {
					if wsclient.IsClosedErr(err) {
						slowDead[i].Store(true)
						slowClosed.Add(1)
					}
					return
				}
				slowSent.Add(1)
			}
		}()
	}
	proc.Sleep(ctx, time.Until(end))
	close(stopSlow)
	for i, c := range conns {
		if c != nil && slow[i] {
			c.NC.SetWriteDeadline(time.Now()) // unblock a write stuck on a full window
		}
	}
	sw.Wait()

	// Slow connections not seen closed yet: drain what the server sent and
	// see whether the stream ends (closed) or just stops (still open).
	var late atomic.Int64
	var pw sync.WaitGroup
	for i, c := range conns {
		if c == nil || !slow[i] || slowDead[i].Load() {
			continue
		}
		pw.Add(1)
		go func() {
			defer pw.Done()
			c.NC.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := io.Copy(io.Discard, c.BR); err == nil || wsclient.IsClosedErr(err) {
				late.Add(1)
			}
		}()
	}
	pw.Wait()

	hmu.Lock()
	enc, err := hist.Encode(hdr.V2CompressedEncodingCookieBase)
	part.Gaps, part.MaxDevNs = gaps, maxDev
	hmu.Unlock()
	if err != nil {
		return fmt.Errorf("encode histogram: %w", err)
	}
	part.Hist = string(enc)
	for i, pc := range pcs {
		if pc == nil || slow[i] || !pc.open {
			continue
		}
		n := pc.count.Load()
		part.Pushes += n
		if n >= int64(part.Expected) {
			part.Complete++
		} else {
			part.Missing += int64(part.Expected) - n
		}
	}
	part.Lost = int(lost.Load())
	part.SlowClosed = int(slowClosed.Load())
	part.SlowLate = int(late.Load())
	part.SlowSent = slowSent.Load()
	emu.Lock()
	part.Errors = errs
	emit(fleet.ResultEvent(part))
	emu.Unlock()
	fleet.WaitCmd(ctx, cmds, "close")
	alive := 0
	for _, pc := range pcs {
		if pc != nil && !pc.ended.Load() {
			alive++
		}
	}
	closed.Store(true)
	emit(fleet.Event{Type: "done", Alive: alive})
	return nil
}
