package roomfan

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/stats"
	"github.com/wsmill/wsmill/bench/internal/target"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
	"github.com/wsmill/wsmill/bench/workload/fanout"
)

// Config is the command line of wsload roomfan.
type Config struct {
	N         int
	Layouts   []int // instances per layout, run in this order each round
	Rounds    int
	Interval  time.Duration
	Duration  time.Duration
	Grace     time.Duration
	Settle    time.Duration
	Room      string
	Src       string
	WsmillBin string
	NatsdBin  string
	Root      string
	Out       string
	Verbose   bool
}

func (c *Config) flags(fs *flag.FlagSet) *string {
	fs.IntVar(&c.N, "n", 18000, "subscribers of the room, split evenly over a layout's instances")
	layouts := fs.String("layouts", "1,2", "instances per layout, comma-separated, run in this order every round; 1 runs without NATS, more over NATS")
	fs.IntVar(&c.Rounds, "rounds", 2, "rounds; each runs every layout once")
	fs.DurationVar(&c.Interval, "interval", time.Second, "the publisher sends one message this often")
	fs.DurationVar(&c.Duration, "duration", 15*time.Second, "measured window: the messages sent in it are counted")
	fs.DurationVar(&c.Grace, "grace", 3*time.Second, "how long after the window a message may still arrive (later is missing)")
	fs.DurationVar(&c.Settle, "settle", 40*time.Second, "from starting a layout's subscribers to opening the window: every one must be connected by then")
	fs.StringVar(&c.Room, "room", "fan", "the chat room")
	fs.StringVar(&c.Src, "src", "127.0.0.2,127.0.0.3,127.0.0.4", "source addresses of the subscribers, used round-robin")
	fs.StringVar(&c.WsmillBin, "wsmill-bin", "", "wsmill binary (default: built from -root)")
	fs.StringVar(&c.NatsdBin, "natsd-bin", "", "cmd/natsd binary (default: built from -root)")
	fs.StringVar(&c.Root, "root", "", "wsmill repository root (default: found from the working directory)")
	fs.StringVar(&c.Out, "out", "", "directory for roomfan.json and roomfan.md (default: none)")
	fs.BoolVar(&c.Verbose, "v", false, "pass the child processes' logs through to stderr")
	return layouts
}

// parseLayouts reads -layouts.
func parseLayouts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 || k > 8 {
			return nil, fmt.Errorf("-layouts %q: each layout is a number of instances from 1 to 8", s)
		}
		out = append(out, k)
	}
	return out, nil
}

// validate checks the flags against each other.
func (c *Config) validate() error {
	switch {
	case c.Rounds < 1:
		return errors.New("-rounds must be ≥ 1")
	case c.Interval <= 0 || c.Duration < c.Interval:
		return errors.New("need -interval > 0 and -duration ≥ -interval")
	case c.Grace < 0 || c.Settle <= 0:
		return errors.New("need -grace ≥ 0 and -settle > 0")
	case !fanout.ValidChatRoom(c.Room):
		return fmt.Errorf("-room %q: the chat takes [A-Za-z0-9_-]{1,64}", c.Room)
	case len(c.Layouts) == 0:
		return errors.New("-layouts: none given")
	}
	for _, k := range c.Layouts {
		if c.N < k {
			return fmt.Errorf("-n %d: fewer subscribers than the %d instances of a layout", c.N, k)
		}
	}
	return nil
}

// shares splits n subscribers over k instances, the first ones taking the
// remainder.
func shares(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// fanoutRecord is what this package reads of a `wsload fanout` RESULT.
type fanoutRecord struct {
	Connected  int     `json:"connected"`
	Failed     int     `json:"failed"`
	Open       int     `json:"open"`
	Deliveries int64   `json:"deliveries"`
	Missing    int64   `json:"missing"`
	Dups       int64   `json:"dups"`
	Late       int64   `json:"late"`
	Lost       int     `json:"lost"`
	StampedPct float64 `json:"stamped_pct"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	LastP50ms  float64 `json:"last_p50_ms"`
	LastP99ms  float64 `json:"last_p99_ms"`
	ServerCPU  float64 `json:"server_cpu_s"`
	Bcasts     []bcast `json:"bcasts"`
}

// bcast is one message as one fanout process saw it.
type bcast struct {
	Send  int64 `json:"t"`
	N     int   `json:"n"`
	MaxNs int64 `json:"max"`
}

// Instance is one wsmill's share of a layout's run.
type Instance struct {
	Addr        string  `json:"addr"`
	Subscribers int     `json:"subscribers"`
	Connected   int     `json:"connected"`
	Failed      int     `json:"failed"`
	Open        int     `json:"open"`
	Deliveries  int64   `json:"deliveries"`
	Dups        int64   `json:"dups"`
	Late        int64   `json:"late"`
	Lost        int     `json:"lost"`
	StampedPct  float64 `json:"stamped_pct"`
	P50ms       float64 `json:"delivery_p50_ms"`
	P99ms       float64 `json:"delivery_p99_ms"`
	LastP50ms   float64 `json:"last_p50_ms"` // this instance's own last subscriber
	CPU         float64 `json:"cpu_s"`       // over the window
	CPUPerMsgMs float64 `json:"cpu_ms_per_message"`
}

// Run is one layout in one round.
type Run struct {
	Round        int        `json:"round"`
	Instances    int        `json:"instances"`
	Bus          bool       `json:"nats"`
	Sent         int        `json:"sent"`     // messages the publisher sent in the window
	Messages     int        `json:"messages"` // of those, seen by some subscriber
	Complete     int        `json:"complete"` // reached every open subscriber
	Open         int        `json:"open"`
	Missing      int64      `json:"missing"` // (subscriber, message) pairs not delivered in time
	Dups         int64      `json:"dups"`
	LastP50ms    float64    `json:"last_p50_ms"` // time to the last subscriber over every instance
	LastP99ms    float64    `json:"last_p99_ms"`
	LastMaxMs    float64    `json:"last_max_ms"`
	NATSCPU      float64    `json:"nats_cpu_s"`
	WsmillCPUMs  float64    `json:"wsmill_cpu_ms_per_message"` // all instances
	NATSCPUMs    float64    `json:"nats_cpu_ms_per_message"`
	TotalCPUMs   float64    `json:"cpu_ms_per_message"`
	PerInstance  []Instance `json:"per_instance"`
	PublisherErr string     `json:"publisher_error,omitempty"`
}

// Result is the whole command's output.
type Result struct {
	Workload string    `json:"workload"`
	Started  time.Time `json:"started"`
	Args     []string  `json:"args"`
	N        int       `json:"n"`
	Layouts  []int     `json:"layouts"`
	Interval float64   `json:"interval_ms"`
	Duration float64   `json:"duration_s"`
	Runs     []Run     `json:"runs"`
	Summary  []Summary `json:"summary"`
}

// Summary is one layout over the rounds: medians, and ratios paired by
// round against the first layout.
type Summary struct {
	Instances    int     `json:"instances"`
	LastP50ms    float64 `json:"last_p50_ms"`
	LastP99ms    float64 `json:"last_p99_ms"`
	Delivery0P50 float64 `json:"publisher_instance_delivery_p50_ms"`
	Delivery0P99 float64 `json:"publisher_instance_delivery_p99_ms"`
	Delivery1P50 float64 `json:"other_instance_delivery_p50_ms,omitempty"`
	Delivery1P99 float64 `json:"other_instance_delivery_p99_ms,omitempty"`
	WsmillCPUMs  float64 `json:"wsmill_cpu_ms_per_message"`
	NATSCPUMs    float64 `json:"nats_cpu_ms_per_message"`
	TotalCPUMs   float64 `json:"cpu_ms_per_message"`
	Missing      int64   `json:"missing"`
	Dups         int64   `json:"dups"`
	LastRatio    float64 `json:"last_p50_ratio"` // paired, against the first layout
	CPURatio     float64 `json:"cpu_ratio"`
}

// Command runs wsload roomfan.
func Command(ctx context.Context, args []string) error {
	var cfg Config
	fs := flag.NewFlagSet("roomfan", flag.ContinueOnError)
	layouts := cfg.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Layouts, err = parseLayouts(*layouts); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "roomfan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := cfg.binaries(ctx, tmp); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	res := &Result{Workload: "roomfan", Started: time.Now().UTC(), Args: args, N: cfg.N, Layouts: cfg.Layouts,
		Interval: stats.Ms(cfg.Interval), Duration: cfg.Duration.Seconds()}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, k := range cfg.Layouts {
			fmt.Fprintf(os.Stderr, "roomfan: round %d, %d instance(s) × %d subscribers...\n", round, k, cfg.N/k)
			r, err := cfg.runLayout(ctx, self, tmp, round, k)
			if err != nil {
				return fmt.Errorf("round %d, %d instance(s): %w", round, k, err)
			}
			res.Runs = append(res.Runs, *r)
		}
	}
	res.Summary = summarize(res.Runs, cfg.Layouts)
	printTable(os.Stdout, res)
	if cfg.Out != "" {
		if err := writeFiles(cfg.Out, res); err != nil {
			return err
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "RESULT %s\n", b)
	return nil
}

// binaries builds wsmill and natsd from the repository root unless given.
func (c *Config) binaries(ctx context.Context, tmp string) error {
	if c.WsmillBin != "" && c.NatsdBin != "" {
		return nil
	}
	root, benchDir, err := target.FindRoot(c.Root)
	if err != nil {
		return err
	}
	if c.WsmillBin == "" {
		if c.WsmillBin, err = target.Build(ctx, target.Spec{Label: "wsmill"}, root, benchDir, tmp); err != nil {
			return err
		}
	}
	if c.NatsdBin == "" {
		c.NatsdBin = filepath.Join(tmp, "natsd")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", c.NatsdBin, "./cmd/natsd")
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/natsd: %v\n%s", err, msg)
		}
	}
	return nil
}

// child is a process of a layout.
type child struct {
	name string
	cmd  *exec.Cmd
	out  bytes.Buffer // stdout
	log  *os.File
}

func (c *Config) start(ctx context.Context, tmp, name, bin string, args ...string) (*child, error) {
	ch := &child{name: name, cmd: exec.CommandContext(ctx, bin, args...)}
	ch.cmd.Cancel = func() error { return ch.cmd.Process.Signal(os.Interrupt) }
	ch.cmd.WaitDelay = 10 * time.Second
	f, err := os.Create(filepath.Join(tmp, name+".log"))
	if err != nil {
		return nil, err
	}
	ch.log = f
	var errw io.Writer = f
	if c.Verbose {
		errw = io.MultiWriter(f, os.Stderr)
	}
	ch.cmd.Stdout, ch.cmd.Stderr = &ch.out, errw
	if err := ch.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return ch, nil
}

// tail is the end of a child's log, for an error message.
func (ch *child) tail() string { return target.Tail(ch.log.Name(), 1500) }

// stop ends nats-server: SIGINT, then its exit.
func (ch *child) stop() {
	if ch.cmd.ProcessState == nil {
		_ = ch.cmd.Process.Signal(os.Interrupt)
		_ = ch.cmd.Wait()
	}
	ch.log.Close()
}

// waitListening dials addr until it accepts or the deadline passes.
func waitListening(ctx context.Context, addr string, ch *child) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ch.cmd.ProcessState != nil {
			return fmt.Errorf("%s did not listen on %s: %v\n%s", ch.name, addr, err, ch.tail())
		}
		if err := proc.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// runLayout runs k instances (over NATS when k > 1) for one round.
func (c *Config) runLayout(ctx context.Context, self, tmp string, round, k int) (*Run, error) {
	run := &Run{Round: round, Instances: k, Bus: k > 1}
	natsURL, natsPID := "", 0
	if k > 1 {
		port, err := target.FreePort()
		if err != nil {
			return nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ns, err := c.start(ctx, tmp, fmt.Sprintf("natsd-r%d", round), c.NatsdBin, "-host", "127.0.0.1", "-port", strconv.Itoa(port))
		if err != nil {
			return nil, err
		}
		defer ns.stop()
		if err := waitListening(ctx, addr, ns); err != nil {
			return nil, err
		}
		natsURL, natsPID = "nats://"+addr, ns.cmd.Process.Pid
	}
	addrs := make([]string, k)
	pids := make([]int, k)
	extra := []string{"-metrics-addr", "127.0.0.1:0", "-idle-timeout", "0"}
	if natsURL != "" {
		extra = append(extra, "-nats", natsURL)
	}
	for i := range addrs {
		name := fmt.Sprintf("wsmill-r%d-k%d-%d", round, k, i)
		srv, err := target.Start(ctx, name, c.WsmillBin, time.Hour, extra, filepath.Join(tmp, name+".log"))
		if err != nil {
			return nil, err
		}
		defer srv.Stop()
		addrs[i], pids[i] = srv.Addr, srv.Cmd.Process.Pid
	}

	at := time.Now().Add(c.Settle)
	sh := shares(c.N, k)
	fans := make([]*child, k)
	for i := range fans {
		args := []string{"fanout", "-addr", addrs[i], "-pid", strconv.Itoa(pids[i]), "-n", strconv.Itoa(sh[i]),
			"-chat", c.Room, "-interval", c.Interval.String(), "-duration", c.Duration.String(), "-grace", c.Grace.String(),
			"-at", strconv.FormatInt(at.UnixNano(), 10), "-src", c.Src}
		f, err := c.start(ctx, tmp, fmt.Sprintf("fanout-r%d-k%d-%d", round, k, i), self, args...)
		if err != nil {
			return nil, err
		}
		fans[i] = f
	}

	// The publisher: on the first instance, one message every interval.
	pub, err := wsclient.Dial(ctx, wsclient.Options{Addr: addrs[0], Target: "/chat?room=" + c.Room + "&name=publisher"})
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	go func() { // its own copies come back: read and drop them
		for {
			if _, _, err := pub.ReadMessage(); err != nil {
				return
			}
		}
	}()
	var sent atomic.Int64
	var pubErr atomic.Value
	stopPub := make(chan struct{})
	var pubDone sync.WaitGroup
	pubDone.Add(1)
	go func() {
		defer pubDone.Done()
		t := time.NewTicker(c.Interval)
		defer t.Stop()
		end := at.Add(c.Duration)
		buf := make([]byte, 0, 24)
		for {
			select {
			case <-stopPub:
				return
			case <-t.C:
			}
			now := time.Now().UnixNano()
			buf = strconv.AppendInt(append(buf[:0], 'F'), now, 10)
			if err := pub.WriteFrame(wsclient.OpText, buf); err != nil {
				pubErr.Store(err.Error())
				return
			}
			if now >= at.UnixNano() && now < end.UnixNano() {
				sent.Add(1)
			}
		}
	}()

	// nats-server's CPU over the window.
	var nats0, nats1 float64
	if natsPID > 0 {
		if err := proc.Sleep(ctx, time.Until(at)); err != nil {
			return nil, err
		}
		nats0, _ = proc.CPU(natsPID)
		if err := proc.Sleep(ctx, time.Until(at.Add(c.Duration))); err != nil {
			return nil, err
		}
		nats1, _ = proc.CPU(natsPID)
	}
	recs := make([]fanoutRecord, k)
	var firstErr error
	for i, f := range fans {
		err := f.cmd.Wait()
		f.log.Close()
		if err == nil {
			err = parseResult(f.out.Bytes(), &recs[i])
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %v\n%s", f.name, err, f.tail())
		}
	}
	close(stopPub)
	pubDone.Wait()
	pub.Close()
	if firstErr != nil {
		return nil, firstErr
	}
	if e, ok := pubErr.Load().(string); ok {
		run.PublisherErr = e
	}
	run.Sent = int(sent.Load())
	run.NATSCPU = nats1 - nats0
	run.fill(recs, addrs, sh)
	return run, nil
}

// parseResult finds the RESULT line of a wsload run.
func parseResult(out []byte, into *fanoutRecord) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if j, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			return json.Unmarshal([]byte(j), into)
		}
	}
	return errors.New("no RESULT line in its output")
}

// fill computes a run's figures from its instances' records: a message's
// time to the last subscriber is the latest arrival over every instance,
// and the subscribers it reached add up.
func (r *Run) fill(recs []fanoutRecord, addrs []string, sh []int) {
	by := map[int64]*bcast{}
	var cpu float64
	for i, rec := range recs {
		r.Open += rec.Open
		r.Dups += rec.Dups
		cpu += rec.ServerCPU
		for _, b := range rec.Bcasts {
			m, ok := by[b.Send]
			if !ok {
				m = &bcast{Send: b.Send}
				by[b.Send] = m
			}
			m.N += b.N
			m.MaxNs = max(m.MaxNs, b.MaxNs)
		}
		in := Instance{Addr: addrs[i], Subscribers: sh[i], Connected: rec.Connected, Failed: rec.Failed, Open: rec.Open,
			Deliveries: rec.Deliveries, Dups: rec.Dups, Late: rec.Late, Lost: rec.Lost, StampedPct: rec.StampedPct,
			P50ms: rec.P50ms, P99ms: rec.P99ms, LastP50ms: rec.LastP50ms, CPU: rec.ServerCPU}
		if r.Sent > 0 {
			in.CPUPerMsgMs = 1000 * rec.ServerCPU / float64(r.Sent)
		}
		r.PerInstance = append(r.PerInstance, in)
	}
	var last []float64
	for _, m := range by {
		last = append(last, float64(m.MaxNs)/1e6)
		if m.N >= r.Open {
			r.Complete++
		} else {
			r.Missing += int64(r.Open - m.N)
		}
	}
	r.Messages = len(by)
	if r.Sent > r.Messages { // sent in the window, seen by nobody
		r.Missing += int64(r.Sent-r.Messages) * int64(r.Open)
	}
	sort.Float64s(last)
	r.LastP50ms, r.LastP99ms, r.LastMaxMs = stats.Quantile(last, 0.5), stats.Quantile(last, 0.99), stats.Quantile(last, 1)
	if r.Sent > 0 {
		r.WsmillCPUMs = 1000 * cpu / float64(r.Sent)
		r.NATSCPUMs = 1000 * r.NATSCPU / float64(r.Sent)
		r.TotalCPUMs = r.WsmillCPUMs + r.NATSCPUMs
	}
}

// summarize takes medians per layout and ratios paired by round against
// the first layout.
func summarize(runs []Run, layouts []int) []Summary {
	var out []Summary
	base := layouts[0]
	for _, k := range dedup(layouts) {
		var s Summary
		s.Instances = k
		var last, last99, d0, d099, d1, d199, wcpu, ncpu, tcpu []float64
		var lr, cr []stats.Round
		for _, r := range runs {
			if r.Instances != k {
				continue
			}
			last, last99 = append(last, r.LastP50ms), append(last99, r.LastP99ms)
			d0, d099 = append(d0, r.PerInstance[0].P50ms), append(d099, r.PerInstance[0].P99ms)
			if len(r.PerInstance) > 1 {
				d1, d199 = append(d1, r.PerInstance[1].P50ms), append(d199, r.PerInstance[1].P99ms)
			}
			wcpu, ncpu, tcpu = append(wcpu, r.WsmillCPUMs), append(ncpu, r.NATSCPUMs), append(tcpu, r.TotalCPUMs)
			s.Missing += r.Missing
			s.Dups += r.Dups
			for _, b := range runs {
				if b.Round == r.Round && b.Instances == base {
					lr = append(lr, stats.Round{Server: r.LastP50ms, Base: b.LastP50ms})
					cr = append(cr, stats.Round{Server: r.TotalCPUMs, Base: b.TotalCPUMs})
				}
			}
		}
		s.LastP50ms, s.LastP99ms = stats.Median(last), stats.Median(last99)
		s.Delivery0P50, s.Delivery0P99 = stats.Median(d0), stats.Median(d099)
		if len(d1) > 0 {
			s.Delivery1P50, s.Delivery1P99 = stats.Median(d1), stats.Median(d199)
		}
		s.WsmillCPUMs, s.NATSCPUMs, s.TotalCPUMs = stats.Median(wcpu), stats.Median(ncpu), stats.Median(tcpu)
		s.LastRatio, _, _ = stats.Paired(lr, false)
		s.CPURatio, _, _ = stats.Paired(cr, false)
		out = append(out, s)
	}
	return out
}

func dedup(v []int) []int {
	var out []int
	seen := map[int]bool{}
	for _, x := range v {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// markdown renders the summary table.
func markdown(res *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# wsload roomfan\n\nStarted %s. %d subscribers of one chat room; %d round(s), each running the layouts %v in that order; "+
		"one message every %.0f ms for %.0f s. Medians over rounds; (×) paired by round against %d instance(s).\n\n",
		res.Started.Format(time.RFC3339), res.N, len(res.Runs)/max(len(res.Layouts), 1), res.Layouts, res.Interval, res.Duration, res.Layouts[0])
	fmt.Fprintf(&b, "Arguments: `roomfan %s`\n\n", strings.Join(res.Args, " "))
	b.WriteString("| layout | to last p50 / p99 (ms) | delivery p50 / p99, publisher's instance (ms) | delivery p50 / p99, other instance (ms) | wsmill CPU / message (ms) | nats-server CPU / message (ms) | total CPU / message (ms) | missing | dups |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range res.Summary {
		other := "–"
		if s.Instances > 1 {
			other = fmt.Sprintf("%.1f / %.1f", s.Delivery1P50, s.Delivery1P99)
		}
		bus := "no NATS"
		if s.Instances > 1 {
			bus = "over NATS"
		}
		fmt.Fprintf(&b, "| %d × %d (%s) | %.1f (%.2f×) / %.1f | %.1f / %.1f | %s | %.2f | %.2f | %.2f (%.2f×) | %d | %d |\n",
			s.Instances, res.N/s.Instances, bus, s.LastP50ms, s.LastRatio, s.LastP99ms, s.Delivery0P50, s.Delivery0P99, other,
			s.WsmillCPUMs, s.NATSCPUMs, s.TotalCPUMs, s.CPURatio, s.Missing, s.Dups)
	}
	b.WriteString("\nPer round:\n\n| round | layout | sent | complete | to last p50 / p99 / max (ms) | wsmill CPU per instance (s) | nats CPU (s) |\n|---:|---|---:|---:|---:|---|---:|\n")
	for _, r := range res.Runs {
		var cpus []string
		for _, in := range r.PerInstance {
			cpus = append(cpus, fmt.Sprintf("%.2f", in.CPU))
		}
		fmt.Fprintf(&b, "| %d | %d × %d | %d | %d | %.1f / %.1f / %.1f | %s | %.2f |\n", r.Round, r.Instances, res.N/r.Instances,
			r.Sent, r.Complete, r.LastP50ms, r.LastP99ms, r.LastMaxMs, strings.Join(cpus, ", "), r.NATSCPU)
	}
	return b.String()
}

func printTable(w io.Writer, res *Result) { fmt.Fprint(w, markdown(res)) }

func writeFiles(dir string, res *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "roomfan.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "roomfan.md"), []byte(markdown(res)), 0o644)
}
