package fanout

// fanout: how long one server-wide broadcast takes to reach N connections.
//
// Servers started with -fanout-interval D broadcast, every D, a text frame
// "F" + the unix-nanosecond time taken just before the broadcast starts.
// Client and server share one machine and one clock (CLOCK_REALTIME, which
// both time.Now().UnixNano() and the kernel's SO_TIMESTAMPNS read), so
// arrival − send is the delay of that connection's copy. Arrival is the
// kernel's receive stamp (stamp.go), which leaves out how long this process
// took to get round to reading; the read time is reported beside it.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"sort"
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

// Config is one fan-out run.
type Config struct {
	cli.Target
	fleet.Dialing
	N        int
	Interval time.Duration
	Duration time.Duration
	Grace    time.Duration
	Rooms    int    // > 0: connection i joins room i%Rooms (fanoutrooms.go)
	Chat     string // non-empty: every connection joins this /chat room (fanoutchat.go)
	At       int64  // unix ns: open the window then (several fanouts over one room, wsload roomfan); 0: when connected
	Quiet    bool
}

func (c *Config) register(fs *flag.FlagSet) {
	fs.IntVar(&c.N, "n", 2000, "connections")
	fs.DurationVar(&c.Interval, "interval", time.Second, "the server's -fanout-interval")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "measured window: the broadcasts sent in it are counted")
	fs.DurationVar(&c.Grace, "grace", 3*time.Second, "how long after the window a broadcast sent in it may still arrive (later is missing)")
	c.Dialing.Register(fs, 0, "0: one per 9,000 connections", true)
	fs.StringVar(&c.Chat, "chat", "", "room: connections upgrade at /chat?room=ROOM&name=sI (wsmill's room chat, no greeting) and read the chat's JSON messages whose text is \"F\"+unix ns, sent by a publisher (wsload roomfan)")
	fs.Int64Var(&c.At, "at", 0, "unix ns at which the measured window opens, shared by several fanout processes measuring one room (0: once connected); being connected later is an error")
	fs.IntVar(&c.Rooms, "rooms", 0, "rooms: connection i upgrades at /ws?room=r(i%R), for a server started with -fanout-rooms (0: plain /ws, for a broadcast)")
}

// Command runs "wsload fanout".
func Command(ctx context.Context, args []string) error {
	var cfg Config
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	cfg.Target.Register(fs, "RSS and CPU")
	cfg.register(fs)
	_, err := report.Command(ctx, fs, args, func(ctx context.Context) (*Result, error) { return Run(ctx, cfg) }, Print)
	return err
}

// fanoutBcast is one broadcast as seen by some connections.
type fanoutBcast struct {
	Send      int64 `json:"t"`    // send time from the payload, unix ns
	N         int   `json:"n"`    // connections it reached in time
	MaxNs     int64 `json:"max"`  // latest arrival − send
	ReadMaxNs int64 `json:"rmax"` // latest read − send
}

// fanoutWorkerPart is one worker's share of the fan-out result.
type fanoutWorkerPart struct {
	Open       int            `json:"open"`       // connections open at the window's start
	Lost       int            `json:"lost"`       // of those, ended before the window (and grace) closed
	Deliveries int64          `json:"deliveries"` // (connection, broadcast) pairs received in time
	Stamped    int64          `json:"stamped"`    // of those, with a kernel receive stamp
	Dups       int64          `json:"dups"`       // a broadcast received again (or out of order)
	Late       int64          `json:"late"`       // arrived after the grace
	Hist       string         `json:"hist"`       // arrival − send, µs
	ReadHist   string         `json:"read_hist"`  // read − send, µs
	MaxNs      int64          `json:"max_ns"`
	ReadMaxNs  int64          `json:"read_max_ns"`
	Bcasts     []fanoutBcast  `json:"bcasts"`
	Errors     map[string]int `json:"errors,omitempty"`
}

// Result is the RESULT of a fan-out run.
type Result struct {
	Workload      string         `json:"workload"`
	Server        string         `json:"server,omitempty"`
	N             int            `json:"n"`
	Rooms         int            `json:"rooms,omitempty"`
	Procs         int            `json:"procs"`
	Connected     int            `json:"connected"`
	Failed        int            `json:"failed"`
	IntervalMs    float64        `json:"interval_ms"`
	Seconds       float64        `json:"seconds"`
	Open          int            `json:"open"`
	Broadcasts    int            `json:"broadcasts"`
	Expected      int            `json:"expected_broadcasts"`
	Complete      int            `json:"complete_broadcasts"` // reached every open connection
	Deliveries    int64          `json:"deliveries"`
	Missing       int64          `json:"missing"`
	StampedPct    float64        `json:"stamped_pct"`
	Dups          int64          `json:"dups"`
	Late          int64          `json:"late"`
	Lost          int            `json:"lost"`
	P50ms         float64        `json:"p50_ms"`
	P99ms         float64        `json:"p99_ms"`
	MaxMs         float64        `json:"max_ms"`
	LastP50ms     float64        `json:"last_p50_ms"`
	LastP99ms     float64        `json:"last_p99_ms"`
	LastMaxMs     float64        `json:"last_max_ms"`
	ReadP50ms     float64        `json:"read_p50_ms"`
	ReadP99ms     float64        `json:"read_p99_ms"`
	ReadMaxMs     float64        `json:"read_max_ms"`
	ReadLastP50ms float64        `json:"read_last_p50_ms"`
	Errors        map[string]int `json:"errors,omitempty"`
	Warning       string         `json:"warning,omitempty"`
	Bcasts        []fanoutBcast  `json:"bcasts,omitempty"` // with -at: each broadcast, to merge with other processes' (roomfan)
	RSSBefore     int64          `json:"rss_before"`
	RSSConnected  int64          `json:"rss_connected"`
	RSSAfter      int64          `json:"rss_after"`
	ServerCPU     float64        `json:"server_cpu_s"`
	CPUPerBcastMs float64        `json:"server_cpu_ms_per_broadcast"`
	ServerThreads int            `json:"server_threads"`
}

// parseFanout returns the send time of a fan-out frame ("F" and at most 19
// decimal digits), allocation-free; ok is false for anything else (the
// greeting, time pushes).
func parseFanout(op byte, p []byte) (send int64, ok bool) {
	if op != wsclient.OpText || len(p) < 2 || len(p) > 20 || p[0] != 'F' {
		return 0, false
	}
	for _, b := range p[1:] {
		if b < '0' || b > '9' {
			return 0, false
		}
		d := int64(b - '0')
		if send > (math.MaxInt64-d)/10 {
			return 0, false
		}
		send = send*10 + d
	}
	return send, true
}

// mergeBcasts merges the workers' per-broadcast records by send time:
// deliveries add up, the latest arrival wins. The result is sorted by send
// time.
func mergeBcasts(parts ...[]fanoutBcast) []fanoutBcast {
	by := map[int64]*fanoutBcast{}
	for _, p := range parts {
		for _, b := range p {
			m, ok := by[b.Send]
			if !ok {
				m = &fanoutBcast{Send: b.Send}
				by[b.Send] = m
			}
			m.N += b.N
			m.MaxNs = max(m.MaxNs, b.MaxNs)
			m.ReadMaxNs = max(m.ReadMaxNs, b.ReadMaxNs)
		}
	}
	out := make([]fanoutBcast, 0, len(by))
	for _, m := range by {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Send < out[j].Send })
	return out
}

// missingDeliveries is, over the broadcasts, how many of the open
// connections each one did not reach; complete counts the broadcasts that
// reached them all.
func missingDeliveries(bcasts []fanoutBcast, open int) (missing int64, complete int) {
	for _, b := range bcasts {
		if d := open - b.N; d > 0 {
			missing += int64(d)
		} else {
			complete++
		}
	}
	return missing, complete
}

// lastQuantiles returns p50, p99 and max over broadcasts of the time to the
// last connection, from MaxNs (or ReadMaxNs with read), in ms.
func lastQuantiles(bcasts []fanoutBcast, read bool) (p50, p99, mx float64) {
	v := make([]float64, len(bcasts))
	for i, b := range bcasts {
		if read {
			v[i] = float64(b.ReadMaxNs) / 1e6
		} else {
			v[i] = float64(b.MaxNs) / 1e6
		}
	}
	return stats.Quantile(v, 0.50), stats.Quantile(v, 0.99), stats.Quantile(v, 1)
}

// Run opens cfg.N connections and times the broadcasts they get.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.N < 1 || cfg.Interval <= 0 || cfg.Duration < cfg.Interval || cfg.Grace < 0 {
		return nil, fmt.Errorf("need -n ≥ 1, -interval > 0, -duration ≥ -interval and -grace ≥ 0")
	}
	if err := checkRooms(cfg.Rooms, cfg.N); err != nil {
		return nil, err
	}
	if err := checkChat(cfg.Chat, cfg.Rooms); err != nil {
		return nil, err
	}
	procs := fleet.SplitProcs(cfg.N, cfg.Procs)
	res := &Result{Workload: "fanout", N: cfg.N, Rooms: cfg.Rooms, Procs: procs, IntervalMs: stats.Ms(cfg.Interval),
		Seconds: cfg.Duration.Seconds(), Expected: int(cfg.Duration / cfg.Interval), Errors: map[string]int{}}
	if cfg.PID > 0 {
		ps, err := proc.ReadStat(cfg.PID)
		if err != nil {
			return nil, err
		}
		res.RSSBefore = ps.RSS
	}
	spec := cfg.Dialing.Spec("fanout", cfg.Addr)
	spec.Greeting, spec.ReadBuf, spec.Stamps = cfg.Chat == "", 1024, true
	spec.Interval, spec.Grace, spec.Rooms, spec.Chat = cfg.Interval, cfg.Grace, cfg.Rooms, cfg.Chat
	p, sum, err := fleet.OpenPool(ctx, spec, fleet.PoolOptions{Total: cfg.N, Procs: procs, Rate: cfg.Rate}, !cfg.Quiet)
	if err != nil {
		return nil, err
	}
	defer p.Shutdown(3 * time.Second)
	res.Connected, res.Failed = sum.OK, sum.Fail
	fleet.AddDialErrors(res.Errors, sum)
	// One broadcast passes unmeasured: dialing's after-effects settle.
	if err := proc.Sleep(ctx, cfg.Interval); err != nil {
		return nil, err
	}
	// The window is in absolute time (the clock the payloads carry), a
	// little ahead so that every worker has it before it opens.
	at := time.Now().Add(200 * time.Millisecond)
	if cfg.At != 0 {
		if at = time.Unix(0, cfg.At); time.Until(at) < 100*time.Millisecond {
			return nil, fmt.Errorf("-at: connected %v after the window opened (give the dials more time)", -time.Until(at).Round(time.Millisecond))
		}
	}
	if err := p.Broadcast(fleet.Command{Cmd: "start", At: at.UnixNano(), Duration: cfg.Duration}); err != nil {
		return nil, err
	}
	if !cfg.Quiet {
		fmt.Fprintf(cli.Stderr, "measuring broadcasts for %v...\n", cfg.Duration)
	}
	var srv0, srv1 float64
	if err := proc.Sleep(ctx, time.Until(at)); err != nil {
		return nil, err
	}
	if cfg.PID > 0 {
		ps, err := proc.ReadStat(cfg.PID)
		if err != nil {
			return nil, err
		}
		res.RSSConnected, srv0 = ps.RSS, ps.CPU
	}
	if err := proc.Sleep(ctx, time.Until(at.Add(cfg.Duration))); err != nil {
		return nil, err
	}
	if cfg.PID > 0 {
		if srv1, err = proc.CPU(cfg.PID); err != nil {
			return nil, err
		}
	}
	parts, err := p.Collect(ctx, "result", cfg.Grace+60*time.Second)
	if err != nil {
		return nil, err
	}
	if cfg.PID > 0 {
		ps, err := proc.ReadStat(cfg.PID)
		if err != nil {
			return nil, err
		}
		res.RSSAfter, res.ServerThreads = ps.RSS, ps.Threads
		res.ServerCPU = srv1 - srv0
	}
	h, rh := stats.LatencyHist(), stats.LatencyHist()
	var maxNs, readMaxNs, stamped int64
	var lists [][]fanoutBcast
	for _, e := range parts {
		r, err := fleet.DecodePart[fanoutWorkerPart](e)
		if err != nil {
			return nil, err
		}
		res.Open += r.Open
		res.Lost += r.Lost
		res.Deliveries += r.Deliveries
		res.Dups += r.Dups
		res.Late += r.Late
		stamped += r.Stamped
		maxNs, readMaxNs = max(maxNs, r.MaxNs), max(readMaxNs, r.ReadMaxNs)
		for k, v := range r.Errors {
			res.Errors[k] += v
		}
		for _, x := range []struct {
			into *hdr.Histogram
			enc  string
		}{{h, r.Hist}, {rh, r.ReadHist}} {
			wh, err := hdr.Decode([]byte(x.enc))
			if err != nil {
				return nil, fmt.Errorf("worker %d histogram: %w", e.Worker, err)
			}
			x.into.Merge(wh)
		}
		lists = append(lists, r.Bcasts)
	}
	if _, err := p.CloseAll(30 * time.Second); err != nil {
		return nil, err
	}
	bcasts := mergeBcasts(lists...)
	res.Broadcasts = len(bcasts)
	if cfg.At != 0 {
		res.Bcasts = bcasts
	}
	res.Missing, res.Complete = missingDeliveries(bcasts, res.Open)
	res.P50ms = float64(h.ValueAtQuantile(50)) / 1000
	res.P99ms = float64(h.ValueAtQuantile(99)) / 1000
	res.MaxMs = float64(maxNs) / 1e6
	res.ReadP50ms = float64(rh.ValueAtQuantile(50)) / 1000
	res.ReadP99ms = float64(rh.ValueAtQuantile(99)) / 1000
	res.ReadMaxMs = float64(readMaxNs) / 1e6
	res.LastP50ms, res.LastP99ms, res.LastMaxMs = lastQuantiles(bcasts, false)
	res.ReadLastP50ms, _, _ = lastQuantiles(bcasts, true)
	if res.Deliveries > 0 {
		res.StampedPct = 100 * float64(stamped) / float64(res.Deliveries)
	}
	if res.Broadcasts > 0 && res.ServerCPU > 0 {
		res.CPUPerBcastMs = 1000 * res.ServerCPU / float64(res.Broadcasts)
	}
	if res.Broadcasts < res.Expected {
		res.Warning = fmt.Sprintf("%d broadcasts seen in the window, %d expected: is the server's -fanout-interval %v? (a ticker also drops ticks while a broadcast takes longer than the interval)",
			res.Broadcasts, res.Expected, cfg.Interval)
	}
	if res.Broadcasts == 0 {
		return res, fmt.Errorf("no broadcast was received in the window (is the server started with -fanout-interval %v?)", cfg.Interval)
	}
	return res, nil
}

// Print writes r as a table.
func Print(w io.Writer, r *Result) {
	t := report.NewTable(w)
	t.Row("connections requested / connected / failed", fmt.Sprintf("%d / %d / %d (%d client processes)", r.N, r.Connected, r.Failed, r.Procs))
	if r.Rooms > 0 {
		t.Row("rooms", fmt.Sprintf("%d (connection i in room r(i%%%d))", r.Rooms, r.Rooms))
	}
	t.Row("window / interval", fmt.Sprintf("%.1f s / %.0f ms: %d broadcasts (%d expected), to %d open connections", r.Seconds, r.IntervalMs, r.Broadcasts, r.Expected, r.Open))
	t.Row("arrival − send p50 / p99 / max", fmt.Sprintf("%.3f / %.3f / %.3f ms (over %d deliveries)", r.P50ms, r.P99ms, r.MaxMs, r.Deliveries))
	t.Row("time to the last connection p50 / p99 / max", fmt.Sprintf("%.3f / %.3f / %.3f ms (over broadcasts)", r.LastP50ms, r.LastP99ms, r.LastMaxMs))
	t.Row("read − send p50 / p99 / max", fmt.Sprintf("%.3f / %.3f / %.3f ms; to the last read p50 %.3f ms (client queueing included)", r.ReadP50ms, r.ReadP99ms, r.ReadMaxMs, r.ReadLastP50ms))
	t.Row("missing deliveries", fmt.Sprintf("%d (%d of %d broadcasts reached every connection)", r.Missing, r.Complete, r.Broadcasts))
	t.Row("kernel-stamped / duplicates / late / lost", fmt.Sprintf("%.1f%% / %d / %d / %d", r.StampedPct, r.Dups, r.Late, r.Lost))
	if r.RSSBefore > 0 {
		t.Row("server RSS before / connected / after", fmt.Sprintf("%s / %s / %s", proc.MiB(r.RSSBefore), proc.MiB(r.RSSConnected), proc.MiB(r.RSSAfter)))
		t.Row("server CPU in window / per broadcast / threads", fmt.Sprintf("%.2f s / %.2f ms / %d", r.ServerCPU, r.CPUPerBcastMs, r.ServerThreads))
	}
	for k, v := range r.Errors {
		t.Row("  error", fmt.Sprintf("%d × %s", v, k))
	}
	if r.Warning != "" {
		t.Row("WARNING", r.Warning)
	}
	t.Flush()
}

// fanoutConn is one connection's fan-out record.
type fanoutConn struct {
	last  int64 // send time of the last broadcast counted (reader only)
	ended atomic.Bool
}

// Worker runs one client process's connections, each timing every
// broadcast frame by its kernel receive stamp.
func Worker(ctx context.Context, spec fleet.Spec, cmds <-chan fleet.Command, emit func(fleet.Event)) error {
	var w0, w1 atomic.Int64 // window, unix ns; 0 = not open yet
	grace := int64(spec.Grace)
	var (
		mu        sync.Mutex // guards everything below
		frozen    bool       // the result has been taken: record nothing more
		hist      = stats.LatencyHist()
		rhist     = stats.LatencyHist()
		bc        = map[int64]*fanoutBcast{}
		part      = &fanoutWorkerPart{Errors: map[string]int{}}
		closed    atomic.Bool
		lostCount atomic.Int64
	)
	fcs := make([]*fanoutConn, spec.N)
	reader := func(fc *fanoutConn, c *wsclient.Conn) {
		for {
			op, p, err := c.ReadMessage()
			read := time.Now().UnixNano()
			if err != nil {
				fc.ended.Store(true)
				if ws := w0.Load(); !closed.Load() && ws != 0 && read >= ws && read < w1.Load()+grace {
					lostCount.Add(1)
					mu.Lock()
					part.Errors["lost: "+wsclient.ErrClass(err)]++
					mu.Unlock()
				}
				return
			}
			send, ok := parseFanout(op, p)
			if !ok && spec.Chat != "" {
				send, ok = parseChatFanout(op, p)
			}
			ws, we := w0.Load(), w1.Load()
			if !ok || ws == 0 || send < ws || send >= we {
				continue
			}
			arr, stamped := c.Arrival(), true
			if arr == 0 {
				arr, stamped = read, false
			}
			mu.Lock()
			switch {
			case frozen:
			case arr >= we+grace:
				part.Late++
			case send <= fc.last:
				part.Dups++
			default:
				fc.last = send
				lat, rlat := max(arr-send, 0), max(read-send, 0)
				hist.RecordValue(max(lat/1000, 1))
				rhist.RecordValue(max(rlat/1000, 1))
				part.MaxNs, part.ReadMaxNs = max(part.MaxNs, lat), max(part.ReadMaxNs, rlat)
				part.Deliveries++
				if stamped {
					part.Stamped++
				}
				b, ok := bc[send]
				if !ok {
					b = &fanoutBcast{Send: send}
					bc[send] = b
				}
				b.N++
				b.MaxNs, b.ReadMaxNs = max(b.MaxNs, lat), max(b.ReadMaxNs, rlat)
			}
			mu.Unlock()
		}
	}
	plan := fleet.DialPlan{
		Opts: func(i int) wsclient.Options { return roomOpts(spec, i) },
		Connected: func(i int, c *wsclient.Conn) {
			fc := &fanoutConn{}
			fcs[i] = fc
			go reader(fc, c)
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
	w1.Store(cmd.At + int64(cmd.Duration))
	w0.Store(cmd.At)
	proc.Sleep(ctx, time.Until(time.Unix(0, cmd.At)))
	open := 0
	for _, fc := range fcs {
		if fc != nil && !fc.ended.Load() {
			open++
		}
	}
	proc.Sleep(ctx, time.Until(time.Unix(0, cmd.At+int64(cmd.Duration)+grace)))

	// Freeze the record and take a copy: a reader may still note a lost
	// connection in part.Errors while the copy is encoded.
	mu.Lock()
	frozen = true
	out := *part
	out.Open = open
	out.Lost = int(lostCount.Load())
	out.Errors = make(map[string]int, len(part.Errors))
	for k, v := range part.Errors {
		out.Errors[k] = v
	}
	for _, b := range bc {
		out.Bcasts = append(out.Bcasts, *b)
	}
	enc, err := hist.Encode(hdr.V2CompressedEncodingCookieBase)
	if err == nil {
		out.Hist = string(enc)
		enc, err = rhist.Encode(hdr.V2CompressedEncodingCookieBase)
		out.ReadHist = string(enc)
	}
	mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode histogram: %w", err)
	}
	emit(fleet.ResultEvent(&out))
	fleet.WaitCmd(ctx, cmds, "close")
	closed.Store(true)
	emit(fleet.Event{Type: "done"})
	return nil
}
