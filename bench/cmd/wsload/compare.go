package main

// compare: run one workload against several servers, alternating them over
// rounds, and report the median of each metric and its ratio to a baseline
// server (wsmill by default).

import (
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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/stats"
)

type compareConfig struct {
	Workload     string
	Rounds       int
	Servers      string
	Root         string
	Out          string
	PushInterval time.Duration
	Pause        time.Duration
	WsmillFlags  string
	Baseline     string
	conns        connectionsConfig
	echo         echoConfig
	push         pushConfig
	fanout       fanoutConfig
}

// metricDef names a metric of a workload's RESULT and how to show it.
type metricDef struct {
	Key    string  `json:"key"`
	Label  string  `json:"label"`
	Format string  `json:"format"`
	Better string  `json:"better"`          // "higher" or "lower"
	Scale  float64 `json:"scale,omitempty"` // display multiplier (0: 1)
}

// show formats a value of the metric for tables.
func (m metricDef) show(v float64) string {
	if m.Scale != 0 {
		v *= m.Scale
	}
	return fmt.Sprintf(m.Format, v)
}

// workloadMetrics lists, per workload, the metrics the comparison shows;
// the first is the main one (plotted).
var workloadMetrics = map[string][]metricDef{
	"connections": {
		{"rss_per_conn_bytes", "RSS/conn (B)", "%.0f", "lower", 0},
		{"fds_per_conn", "fds/conn", "%.3f", "lower", 0},
		{"threads_after", "threads", "%.0f", "lower", 0},
		{"dial_rate", "dial rate (conn/s)", "%.0f", "higher", 0},
		{"server_after.rss_bytes", "RSS after (MiB)", "%.1f", "lower", 1.0 / (1 << 20)},
		{"connected", "connected", "%.0f", "higher", 0},
		{"failed", "failed", "%.0f", "lower", 0},
		{"lost_during_hold", "lost", "%.0f", "lower", 0},
	},
	"echo": {
		{"msgs_per_s", "msgs/s", "%.0f", "higher", 0},
		{"mb_per_s", "MB/s", "%.2f", "higher", 0},
		{"p50_us", "p50 (µs)", "%.0f", "lower", 0},
		{"p99_us", "p99 (µs)", "%.0f", "lower", 0},
		{"p999_us", "p99.9 (µs)", "%.0f", "lower", 0},
		{"server_cpu_s", "server CPU (s)", "%.2f", "lower", 0},
		{"msgs_per_server_cpu_s", "msgs/server CPU-s", "%.0f", "higher", 0},
		{"client_cpu_s", "client CPU (s)", "%.2f", "lower", 0},
		{"mismatch", "mismatches", "%.0f", "lower", 0},
		{"wire_out_per_msg", "wire out (B/msg)", "%.0f", "lower", 0},
		{"wire_in_per_msg", "wire in (B/msg)", "%.0f", "lower", 0},
		{"deflate_conns", "deflate conns", "%.0f", "higher", 0},
	},
	"push": {
		{"push_p99_ms", "push p99 (ms)", "%.3f", "lower", 0},
		{"push_p50_ms", "push p50 (ms)", "%.3f", "lower", 0},
		{"push_max_ms", "push max (ms)", "%.3f", "lower", 0},
		{"complete_pct", "every push (%)", "%.2f", "higher", 0},
		{"slow_closed", "slow closed", "%.0f", "higher", 0},
		{"rss_connected", "RSS connected (MiB)", "%.1f", "lower", 1.0 / (1 << 20)},
		{"rss_after", "RSS after (MiB)", "%.1f", "lower", 1.0 / (1 << 20)},
		{"server_cpu_s", "server CPU (s)", "%.2f", "lower", 0},
	},
	"fanout": {
		{"last_p50_ms", "to last p50 (ms)", "%.2f", "lower", 0},
		{"last_p99_ms", "to last p99 (ms)", "%.2f", "lower", 0},
		{"p50_ms", "delivery p50 (ms)", "%.2f", "lower", 0},
		{"p99_ms", "delivery p99 (ms)", "%.2f", "lower", 0},
		{"max_ms", "max (ms)", "%.2f", "lower", 0}, // over pairs = over broadcasts' last
		{"missing", "missing", "%.0f", "lower", 0},
		{"broadcasts", "broadcasts", "%.0f", "higher", 0},
		{"read_last_p50_ms", "to last read p50 (ms)", "%.2f", "lower", 0},
		{"server_cpu_ms_per_broadcast", "server CPU/broadcast (ms)", "%.1f", "lower", 0},
		{"rss_connected", "RSS connected (MiB)", "%.1f", "lower", 1.0 / (1 << 20)},
	},
}

// compareRun is one server in one round.
type compareRun struct {
	Server  string         `json:"server"`
	Round   int            `json:"round"`
	Result  map[string]any `json:"result,omitempty"`
	Error   string         `json:"error,omitempty"`
	Skipped string         `json:"skipped,omitempty"`
}

// compareReport is what compare writes to DIR/compare-WORKLOAD.json.
type compareReport struct {
	Workload string                        `json:"workload"`
	Rounds   int                           `json:"rounds"`
	Servers  []string                      `json:"servers"`
	Baseline string                        `json:"baseline,omitempty"` // ratios are to its medians ("" in old files: wsmill)
	Args     []string                      `json:"args"`
	Started  time.Time                     `json:"started"`
	Host     map[string]string             `json:"host"`
	Metrics  []metricDef                   `json:"metrics"`
	Medians  map[string]map[string]float64 `json:"medians"`
	Ratios   map[string]map[string]float64 `json:"ratios"` // server median / baseline median
	// Paired ratios: in each round, the server's figure over the
	// baseline's of the same round; the median of those, and in how many
	// rounds the server did better than the baseline. Slow drifts of a
	// shared machine (another tenant for a minute) move both figures of a
	// round together, so these are steadier than the ratio of medians.
	Paired map[string]map[string]float64 `json:"paired,omitempty"`
	Wins   map[string]map[string]int     `json:"wins,omitempty"`
	Runs   []compareRun                  `json:"runs"`
}

// scanWorkload finds -workload's value before the flags are defined,
// because the workload decides which flags exist.
func scanWorkload(args []string) string {
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "workload" {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func cmdCompare(ctx context.Context, args []string) error {
	var cfg compareConfig
	cfg.Workload = scanWorkload(args)
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.StringVar(&cfg.Workload, "workload", cfg.Workload, "echo, connections, push or fanout")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds; each round runs every server once, in the same order")
	fs.StringVar(&cfg.Servers, "servers", "wsmill,gorilla,gws,nbio,rawecho",
		"servers to compare: wsmill (the repository root; for fanout bench/peers/wsmill), a directory name under bench/peers, or bin:PATH (a prebuilt binary with wsmill's flags, labelled by its base name); NAME+FLAG adds -FLAG to that server's command line (wsmill+deflate,wsmill,gws+deflate); in fanout NAME@broadcast or NAME@rooms sets that server's mode (default: rooms when -rooms ≥ 1), after any +FLAG (wsmill+deflate@rooms)")
	fs.StringVar(&cfg.Root, "root", "", "wsmill repository root (default: found from the working directory)")
	fs.StringVar(&cfg.Out, "out", "", "directory for the JSON, Markdown and PNG results (default: ROOT/bench/results)")
	fs.DurationVar(&cfg.PushInterval, "push-interval", 5*time.Second, "the servers' -push-interval (the push workload uses -interval instead; fanout defaults to 1h)")
	fs.DurationVar(&cfg.Pause, "pause", 2*time.Second, "pause between runs, for the machine to settle")
	fs.StringVar(&cfg.WsmillFlags, "wsmill-flags", "-idle-timeout 0", "extra flags for the repository-root wsmill and for bin: servers (space-separated)")
	fs.StringVar(&cfg.Baseline, "baseline", "", "server whose medians the ratios divide by (default: wsmill if compared, else the first server)")
	switch cfg.Workload {
	case "connections":
		cfg.conns.register(fs, false)
	case "echo":
		cfg.echo.register(fs, false)
	case "push":
		cfg.push.register(fs, false)
	case "fanout":
		cfg.fanout.register(fs, false)
	case "":
		if err := fs.Parse(args); err != nil {
			return err
		}
		return errors.New("-workload is required (echo, connections, push or fanout)")
	default:
		return fmt.Errorf("unknown -workload %q (echo, connections, push or fanout)", cfg.Workload)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	if cfg.Workload == "fanout" && !flagSet(fs, "push-interval") {
		cfg.PushInterval = time.Hour // time pushes out of the way of the broadcasts
	}
	root, benchDir, err := findRoot(cfg.Root)
	if err != nil {
		return err
	}
	specs, err := resolveServers(fleet.ParseSrc(cfg.Servers), cfg.Workload)
	if err != nil {
		return err
	}
	if cfg.Workload == "fanout" {
		if err := setFanoutModes(specs, cfg.fanout.Rooms); err != nil {
			return err
		}
	}
	var servers []string
	for _, sp := range specs {
		servers = append(servers, sp.Label)
	}
	baseline, err := pickBaseline(cfg.Baseline, servers)
	if err != nil {
		return err
	}
	if cfg.Out == "" {
		cfg.Out = filepath.Join(benchDir, "results")
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "wsload-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Build every server once (wsmill and wsmill+deflate share a binary).
	built := map[string]string{}
	for i := range specs {
		if specs[i].Skip != "" || specs[i].Bin != "" {
			continue
		}
		if bin, ok := built[specs[i].Peer]; ok {
			specs[i].Bin = bin
			continue
		}
		if specs[i].Bin, err = buildServer(ctx, specs[i], root, benchDir, tmp); err != nil {
			return err
		}
		built[specs[i].Peer] = specs[i].Bin
	}

	rep := &compareReport{Workload: cfg.Workload, Rounds: cfg.Rounds, Servers: servers, Baseline: baseline, Args: args,
		Started: time.Now().UTC(), Host: hostInfo(), Metrics: workloadMetrics[cfg.Workload]}
	for _, sp := range specs {
		if sp.Skip != "" {
			fmt.Fprintf(stderr, "skipping %s: %s\n", sp.Label, sp.Skip)
		}
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, sp := range specs {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s := sp.Label
			run := compareRun{Server: s, Round: round}
			if sp.Skip != "" {
				run.Skipped = sp.Skip
				rep.Runs = append(rep.Runs, run)
				continue
			}
			fmt.Fprintf(stderr, "== round %d/%d: %s %s\n", round, cfg.Rounds, s, cfg.Workload)
			res, err := compareOne(ctx, &cfg, sp, filepath.Join(tmp, fmt.Sprintf("%s-%d.log", s, round)))
			if res != nil {
				run.Result = toMap(res)
			}
			if err != nil {
				run.Error = err.Error()
				fmt.Fprintf(stderr, "   %s round %d failed: %v\n", s, round, err)
			} else {
				fmt.Fprintf(stderr, "   %s\n", summaryLine(cfg.Workload, run.Result))
			}
			rep.Runs = append(rep.Runs, run)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			proc.Sleep(ctx, cfg.Pause)
		}
	}
	rep.summarize()
	printCompare(stdout, rep)
	if err := writeCompare(rep, cfg.Out); err != nil {
		return err
	}
	printResult(map[string]any{"workload": rep.Workload, "rounds": rep.Rounds, "servers": rep.Servers,
		"baseline": rep.Baseline, "medians": rep.Medians, "ratios": rep.Ratios, "out": cfg.Out})
	return nil
}

// serverSpec says where one compared server comes from and how it is run.
type serverSpec struct {
	Label       string   // its name in tables and files
	Bin         string   // the binary: given (bin:PATH) or, once built, in the temporary directory
	Peer        string   // bench/peers/NAME to build; "" (and no Bin) is the repository root
	WsmillFlags bool     // takes -wsmill-flags: the repository-root wsmill, or a bin: build of it
	Skip        string   // why this server sits this workload out
	Args        []string // flags from the entry's +FLAG parts (compareargs.go)
	Mode        string   // fanout: "@MODE" of -servers, "" for none (compare_rooms.go)
	Rooms       bool     // fanout: started with -fanout-rooms
}

// resolveServers turns -servers into specs. "wsmill" is the repository
// root's binary, except in fanout: the root binary has no broadcast, so
// there it is bench/peers/wsmill, the peer written on wsmill's API.
// "bin:PATH" is a prebuilt binary with the root wsmill's flags (an A/B of
// two builds), labelled by its base name.
func resolveServers(names []string, workload string) ([]serverSpec, error) {
	if len(names) == 0 {
		return nil, errors.New("-servers is empty")
	}
	var specs []serverSpec
	seen := map[string]bool{}
	for _, entry := range names {
		base, mode, err := splitServerMode(entry, workload)
		if err != nil {
			return nil, err
		}
		n, args, err := splitServerArgs(base)
		if err != nil {
			return nil, err
		}
		var sp serverSpec
		switch {
		case strings.HasPrefix(n, "bin:"):
			path := strings.TrimPrefix(n, "bin:")
			abs, err := filepath.Abs(path)
			if err != nil {
				return nil, err
			}
			st, err := os.Stat(abs)
			if err != nil {
				return nil, fmt.Errorf("server %s: %w", n, err)
			}
			if st.IsDir() || st.Mode()&0o111 == 0 {
				return nil, fmt.Errorf("server %s: not an executable file", n)
			}
			sp = serverSpec{Label: filepath.Base(abs), Bin: abs, WsmillFlags: true}
		case n == "wsmill" && workload == "fanout":
			sp = serverSpec{Label: n, Peer: "wsmill"}
		case n == "wsmill":
			sp = serverSpec{Label: n, WsmillFlags: true}
		default:
			sp = serverSpec{Label: n, Peer: n}
		}
		if n == "rawecho" {
			switch workload {
			case "push":
				sp.Skip = "rawecho does not push"
			case "fanout":
				sp.Skip = "rawecho cannot broadcast (it echoes bytes, it has no WebSocket framing nor a connection list)"
			}
		}
		if len(args) > 0 || mode != "" {
			sp.Label, sp.Args, sp.Mode = sp.Label+strings.TrimPrefix(entry, n), args, mode
		}
		if seen[sp.Label] {
			return nil, fmt.Errorf("server %q appears twice in -servers (bin: servers are labelled by their file's base name)", sp.Label)
		}
		seen[sp.Label] = true
		specs = append(specs, sp)
	}
	return specs, nil
}

// pickBaseline checks -baseline, or picks wsmill when compared, else the
// first server.
func pickBaseline(want string, servers []string) (string, error) {
	if want != "" {
		if !slices.Contains(servers, want) {
			return "", fmt.Errorf("-baseline %q is not one of -servers (%s)", want, strings.Join(servers, ", "))
		}
		return want, nil
	}
	if slices.Contains(servers, "wsmill") {
		return "wsmill", nil
	}
	return servers[0], nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// findRoot locates the wsmill root and the bench module directory: -root
// if given, otherwise the nearest directory (from the working directory
// upwards) that is the bench module or contains it.
func findRoot(root string) (string, string, error) {
	if root != "" {
		bench := filepath.Join(root, "bench")
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
			return "", "", fmt.Errorf("-root %s: %w", root, err)
		}
		return root, bench, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		if isBenchModule(dir) {
			return filepath.Dir(dir), dir, nil
		}
		if isBenchModule(filepath.Join(dir, "bench")) {
			return dir, filepath.Join(dir, "bench"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", errors.New("cannot find the wsmill root (a directory with bench/go.mod) from here: use -root")
		}
		dir = parent
	}
}

func isBenchModule(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && bytes.Contains(b, []byte("module github.com/wsmill/wsmill/bench"))
}

// buildServer compiles one server into dir and returns the binary's path.
func buildServer(ctx context.Context, sp serverSpec, root, benchDir, dir string) (string, error) {
	bin := filepath.Join(dir, sp.Label)
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	what := sp.Label
	if sp.Peer == "" {
		cmd = exec.CommandContext(bctx, "go", "build", "-o", bin, ".")
		cmd.Dir = root
	} else {
		src := filepath.Join(benchDir, "peers", sp.Peer)
		if _, err := os.Stat(src); err != nil {
			return "", fmt.Errorf("server %q: no directory %s", sp.Label, src)
		}
		cmd = exec.CommandContext(bctx, "go", "build", "-o", bin, "./peers/"+sp.Peer)
		cmd.Dir = benchDir
		if sp.Peer == sp.Label && sp.Label == "wsmill" {
			what = "wsmill (bench/peers/wsmill)"
		}
	}
	fmt.Fprintf(stderr, "building %s...\n", what)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", sp.Label, err, out)
	}
	return bin, nil
}

// serverProc is a server under test.
type serverProc struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	err    error // set when exited is closed
	log    *os.File
}

// startServer runs bin on a fresh 127.0.0.1 port and waits until it accepts.
func startServer(ctx context.Context, name, bin string, interval time.Duration, extra []string, logPath string) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-addr", addr, "-push-interval", interval.String()}
	args = append(args, extra...)
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &serverProc{cmd: cmd, addr: addr, exited: make(chan struct{}), log: lf}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			// Let the server drop the probe before the baseline is taken.
			time.Sleep(300 * time.Millisecond)
			return s, nil
		}
		select {
		case <-s.exited:
			lf.Close()
			return nil, fmt.Errorf("%s exited before accepting (%v): %s", name, s.err, tail(logPath, 600))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s does not accept on %s after 15 s", name, addr)
		}
	}
}

// stop sends SIGTERM, and SIGKILL after 5 s.
func (s *serverProc) stop() error {
	defer s.log.Close()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	s.cmd.Process.Kill()
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
	return errors.New("did not exit within 5 s of SIGTERM: killed")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// compareOne starts one server, runs the workload against it, stops it.
func compareOne(ctx context.Context, cfg *compareConfig, sp serverSpec, logPath string) (any, error) {
	name := sp.Label
	interval := cfg.PushInterval
	if cfg.Workload == "push" {
		interval = cfg.push.Interval
	}
	var extra []string
	if cfg.Workload == "fanout" {
		extra = append(extra, "-fanout-interval", cfg.fanout.Interval.String())
		if sp.Rooms {
			extra = append(extra, "-fanout-rooms")
		}
	}
	if sp.WsmillFlags {
		extra = append(extra, strings.Fields(cfg.WsmillFlags)...)
	}
	extra = append(extra, sp.Args...)
	srv, err := startServer(ctx, name, sp.Bin, interval, extra, logPath)
	if err != nil {
		return nil, err
	}
	pid := srv.cmd.Process.Pid
	var res any
	var rerr error
	switch cfg.Workload {
	case "connections":
		c := cfg.conns
		c.Addr, c.PID = srv.addr, pid
		if name == "rawecho" {
			c.Greeting = false
		}
		var r *connectionsResult
		if r, rerr = runConnections(ctx, c); r != nil {
			r.Server = name
			res = r
		}
	case "echo":
		c := cfg.echo
		c.Addr, c.PID, c.Quiet = srv.addr, pid, true
		if name == "rawecho" {
			c.Greeting = false
		}
		var r *echoResult
		if r, rerr = runEcho(ctx, c); r != nil {
			r.Server = name
			res = r
		}
	case "push":
		c := cfg.push
		c.Addr, c.PID = srv.addr, pid
		var r *pushResult
		if r, rerr = runPush(ctx, c); r != nil {
			r.Server = name
			res = r
		}
	case "fanout":
		c := cfg.fanout
		c.Addr, c.PID, c.Quiet = srv.addr, pid, true
		var r *fanoutResult
		if r, rerr = runFanout(ctx, c); r != nil {
			r.Server = name
			res = r
		}
	}
	select {
	case <-srv.exited:
		rerr = errors.Join(rerr, fmt.Errorf("%s exited during the run (%v): %s", name, srv.err, tail(logPath, 600)))
		srv.log.Close()
	default:
		if err := srv.stop(); err != nil {
			fmt.Fprintf(stderr, "   %s: %v\n", name, err)
		}
	}
	return res, rerr
}

// toMap flattens a result struct to metric name → value via its JSON form;
// nested objects become "outer.inner".
func toMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func lookup(m map[string]any, key string) (float64, bool) {
	var cur any = m
	for _, part := range strings.Split(key, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return 0, false
		}
		cur = mm[part]
	}
	f, ok := cur.(float64)
	return f, ok
}

// summarize fills the medians over the successful rounds and the ratios to
// the baseline.
func (r *compareReport) summarize() {
	r.Medians = map[string]map[string]float64{}
	r.Ratios = map[string]map[string]float64{}
	for _, s := range r.Servers {
		med := map[string]float64{}
		for _, m := range r.Metrics {
			var vals []float64
			for _, run := range r.Runs {
				if run.Server != s || run.Result == nil || run.Error != "" {
					continue
				}
				if v, ok := lookup(run.Result, m.Key); ok {
					vals = append(vals, v)
				}
			}
			if len(vals) > 0 {
				med[m.Key] = stats.Median(vals)
			}
		}
		if len(med) > 0 {
			r.Medians[s] = med
		}
	}
	base, ok := r.Medians[r.baseline()]
	if !ok {
		return
	}
	for s, med := range r.Medians {
		rat := map[string]float64{}
		for k, v := range med {
			if b := base[k]; b != 0 {
				rat[k] = v / b
			}
		}
		r.Ratios[s] = rat
	}
	r.pair()
}

// pair fills Paired and Wins from the rounds where both the server and the
// baseline have the metric.
func (r *compareReport) pair() {
	r.Paired = map[string]map[string]float64{}
	r.Wins = map[string]map[string]int{}
	base := map[int]map[string]any{}
	for _, run := range r.Runs {
		if run.Server == r.baseline() && run.Result != nil && run.Error == "" {
			base[run.Round] = run.Result
		}
	}
	for _, s := range r.Servers {
		if s == r.baseline() {
			continue
		}
		paired, wins := map[string]float64{}, map[string]int{}
		for _, m := range r.Metrics {
			var rounds []stats.Round
			for _, run := range r.Runs {
				if run.Server != s || run.Result == nil || run.Error != "" || base[run.Round] == nil {
					continue
				}
				v, ok1 := lookup(run.Result, m.Key)
				b, ok2 := lookup(base[run.Round], m.Key)
				if ok1 && ok2 {
					rounds = append(rounds, stats.Round{Server: v, Base: b})
				}
			}
			if ratio, w, ok := stats.Paired(rounds, m.Better == "higher"); ok {
				paired[m.Key], wins[m.Key] = ratio, w
			}
		}
		r.Paired[s], r.Wins[s] = paired, wins
	}
}

// pairedLines describes, per server, the paired ratios of the first metric
// and of the per-CPU one (the two that decide most comparisons).
func (r *compareReport) pairedLines() []string {
	var keys []metricDef
	for i, m := range r.Metrics {
		if i == 0 || strings.Contains(m.Key, "per_server_cpu") {
			keys = append(keys, m)
		}
	}
	var lines []string
	for _, s := range r.Servers {
		p, ok := r.Paired[s]
		if !ok || len(p) == 0 {
			continue
		}
		n := 0 // the server's successful rounds
		for _, run := range r.Runs {
			if run.Server == s && run.Result != nil && run.Error == "" {
				n++
			}
		}
		var parts []string
		for _, m := range keys {
			v, ok := p[m.Key]
			if !ok {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %.2f× (better than %s in %d of %d rounds)", m.Label, v, r.baseline(), r.Wins[s][m.Key], n))
		}
		if len(parts) > 0 {
			lines = append(lines, s+": "+strings.Join(parts, "; "))
		}
	}
	return lines
}

// baseline is the server the ratios are to: wsmill in files written
// before -baseline existed.
func (r *compareReport) baseline() string {
	if r.Baseline == "" {
		return "wsmill"
	}
	return r.Baseline
}

// cell formats a median and its ratio to the baseline.
func (r *compareReport) cell(server string, m metricDef) string {
	v, ok := r.Medians[server][m.Key]
	if !ok {
		return "–"
	}
	s := m.show(v)
	if rat, ok := r.Ratios[server][m.Key]; ok && server != r.baseline() {
		s += fmt.Sprintf(" (%.2f×)", rat)
	}
	return s
}

// notes lists failed and skipped runs per server.
func (r *compareReport) notes(server string) string {
	var failed, skipped int
	for _, run := range r.Runs {
		if run.Server != server {
			continue
		}
		if run.Error != "" {
			failed++
		}
		if run.Skipped != "" {
			skipped++
		}
	}
	var parts []string
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d rounds failed", failed, r.Rounds))
	}
	if skipped > 0 {
		parts = append(parts, "skipped")
	}
	return strings.Join(parts, ", ")
}

func printCompare(w io.Writer, r *compareReport) {
	fmt.Fprintf(w, "\n%s: median over %d round(s); (×) is the ratio to %s\n", r.Workload, r.Rounds, r.baseline())
	t := newTable(w)
	head := []string{"server"}
	for _, m := range r.Metrics {
		head = append(head, m.Label)
	}
	t.row(append(head, "notes")...)
	for _, s := range r.Servers {
		row := []string{s}
		for _, m := range r.Metrics {
			row = append(row, r.cell(s, m))
		}
		t.row(append(row, r.notes(s))...)
	}
	t.flush()
	if lines := r.pairedLines(); len(lines) > 0 {
		fmt.Fprintf(w, "paired: median over rounds of (server / %s in the same round)\n", r.baseline())
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	for _, run := range r.Runs {
		if run.Error != "" {
			fmt.Fprintf(w, "round %d %s: %s\n", run.Round, run.Server, firstLine(run.Error))
		}
	}
}

func (r *compareReport) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# wsload compare: %s\n\n", r.Workload)
	fmt.Fprintf(&b, "Started %s on %s (%s CPUs, %s). %d round(s); each round runs every server once in the order %s. Cells are medians over the rounds; (×) is the ratio to %s.\n\n",
		r.Started.Format(time.RFC3339), r.Host["os"], r.Host["cpus"], r.Host["go"], r.Rounds, strings.Join(r.Servers, ", "), r.baseline())
	fmt.Fprintf(&b, "Arguments: `compare %s`\n\n", strings.Join(r.Args, " "))
	b.WriteString("| server |")
	for _, m := range r.Metrics {
		fmt.Fprintf(&b, " %s (%s is better) |", m.Label, m.Better)
	}
	b.WriteString(" notes |\n|---|")
	for range r.Metrics {
		b.WriteString("---:|")
	}
	b.WriteString("---|\n")
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "| %s |", s)
		for _, m := range r.Metrics {
			fmt.Fprintf(&b, " %s |", r.cell(s, m))
		}
		fmt.Fprintf(&b, " %s |\n", r.notes(s))
	}
	if lines := r.pairedLines(); len(lines) > 0 {
		fmt.Fprintf(&b, "\nPaired ratios: the median over rounds of the server's figure over %s's in the same round.\n\n", r.baseline())
		for _, l := range lines {
			b.WriteString("- " + l + "\n")
		}
	}
	var errs []string
	for _, run := range r.Runs {
		if run.Error != "" {
			errs = append(errs, fmt.Sprintf("- round %d, %s: %s", run.Round, run.Server, firstLine(run.Error)))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nFailed runs:\n\n" + strings.Join(errs, "\n") + "\n")
	}
	fmt.Fprintf(&b, "\n![%s](compare-%s.png)\n", r.Metrics[0].Label, r.Workload)
	return b.String()
}

// writeCompare writes DIR/compare-WORKLOAD.{json,md,png}.
func writeCompare(r *compareReport, dir string) error {
	base := filepath.Join(dir, "compare-"+r.Workload)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(base+".md", []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	if err := plotCompare(r, base+".png"); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	fmt.Fprintf(stderr, "wrote %s.json, %s.md, %s.png\n", base, base, base)
	return nil
}

func summaryLine(workload string, m map[string]any) string {
	var parts []string
	for _, d := range workloadMetrics[workload][:4] {
		if v, ok := lookup(m, d.Key); ok {
			parts = append(parts, d.Label+" "+d.show(v))
		}
	}
	return strings.Join(parts, ", ")
}

func hostInfo() map[string]string {
	h := map[string]string{"go": runtime.Version(), "cpus": strconv.Itoa(runtime.NumCPU()), "os": runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h["kernel"] = strings.TrimSpace(string(b))
	}
	return h
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
