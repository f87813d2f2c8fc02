package compare

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/internal/target"
)

// Workload is what compare needs of a workload to run it against each
// server in turn. A workload package provides one (its Compared function)
// and main registers it under the workload's name; compare knows no
// workload by name.
type Workload interface {
	// Register defines the workload's own flags on fs: all but -addr
	// and -pid, which compare sets for each server it starts.
	Register(fs *flag.FlagSet)
	// Metrics lists the figures of the result that compare tabulates,
	// the main one first (it is the one plotted).
	Metrics() []report.Metric
	// Server says how the server under test is started: its
	// -push-interval (pushInterval is compare's -push-interval, given
	// whether it was on the command line) and more flags.
	Server(pushInterval time.Duration, given bool) (interval time.Duration, extra []string)
	// Needs says what the workload needs of a server besides the
	// upgrade and the echo.
	Needs() Needs
	// Run runs the workload once against t and returns its result (the
	// struct its RESULT line shows), or an error; a result may come
	// with an error (a run that measured something, then failed).
	Run(ctx context.Context, t Target) (any, error)
}

// Needs is what a workload needs of the servers it is compared on; a
// server that cannot do it (rawecho: no pushes, no broadcast) sits the
// workload out.
type Needs struct {
	Pushes    bool // the time pushes every -push-interval
	Broadcast bool // -fanout-interval: the repository-root wsmill has none, so "wsmill" is bench/peers/wsmill
}

// Target is one started server, as a workload's Run gets it.
type Target struct {
	Server   string // its label, for the result's "server" field
	Addr     string // host:port
	PID      int    // its process, for RSS and CPU
	Greeting bool   // it greets with "Hi Client!" (rawecho does not)
}

var registry = map[string]func() Workload{}

// Register makes a workload comparable under name; main calls it once per
// comparable workload before Command runs.
func Register(name string, w func() Workload) { registry[name] = w }

// names lists the registered workloads, sorted, for messages.
func names() string {
	n := make([]string, 0, len(registry))
	for k := range registry {
		n = append(n, k)
	}
	slices.Sort(n)
	return strings.Join(n, ", ")
}

// Metrics returns the metrics of a registered workload (nil if unknown):
// plot -report uses them for files written before reports kept theirs.
func Metrics(workload string) []report.Metric {
	if w, ok := registry[workload]; ok {
		return w().Metrics()
	}
	return nil
}

type config struct {
	Workload     string
	Rounds       int
	Servers      string
	Root         string
	Out          string
	PushInterval time.Duration
	pushGiven    bool
	Pause        time.Duration
	WsmillFlags  string
	Baseline     string
	w            Workload
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

// Command runs "wsload compare".
func Command(ctx context.Context, args []string) error {
	var cfg config
	cfg.Workload = scanWorkload(args)
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.StringVar(&cfg.Workload, "workload", cfg.Workload, names())
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds; each round runs every server once, in the same order")
	fs.StringVar(&cfg.Servers, "servers", "wsmill,gorilla,gws,nbio,rawecho",
		"servers to compare: wsmill (the repository root; for fanout bench/peers/wsmill), a directory name under bench/peers, or bin:PATH (a prebuilt binary with wsmill's flags, labelled by its base name); NAME+FLAG adds -FLAG to that server's command line (wsmill+deflate,wsmill,gws+deflate); in fanout NAME@broadcast or NAME@rooms sets that server's mode (default: rooms when -rooms ≥ 1), after any +FLAG (wsmill+deflate@rooms)")
	fs.StringVar(&cfg.Root, "root", "", "wsmill repository root (default: found from the working directory)")
	fs.StringVar(&cfg.Out, "out", "", "directory for the JSON, Markdown and PNG results (default: ROOT/bench/results)")
	fs.DurationVar(&cfg.PushInterval, "push-interval", 5*time.Second, "the servers' -push-interval (the push workload uses -interval instead; fanout defaults to 1h)")
	fs.DurationVar(&cfg.Pause, "pause", 2*time.Second, "pause between runs, for the machine to settle")
	fs.StringVar(&cfg.WsmillFlags, "wsmill-flags", "-idle-timeout 0", "extra flags for the repository-root wsmill and bin: builds of it (space-separated)")
	fs.StringVar(&cfg.Baseline, "baseline", "", "server whose medians the ratios divide by (default: wsmill if compared, else the first server)")
	if cfg.Workload == "" {
		if err := fs.Parse(args); err != nil {
			return err
		}
		return fmt.Errorf("-workload is required (%s)", names())
	}
	mk, ok := registry[cfg.Workload]
	if !ok {
		return fmt.Errorf("unknown -workload %q (%s)", cfg.Workload, names())
	}
	cfg.w = mk()
	cfg.w.Register(fs)
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	cfg.pushGiven = cli.Given(fs, "push-interval")
	root, benchDir, err := target.FindRoot(cfg.Root)
	if err != nil {
		return err
	}
	var modes []string
	modal, isModal := cfg.w.(Modal)
	if isModal {
		modes = modal.Modes()
	}
	specs, err := resolveServers(fleet.ParseSrc(cfg.Servers), cfg.w.Needs(), modes)
	if err != nil {
		return err
	}
	if isModal {
		if err := setModes(specs, modal); err != nil {
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
		if specs[i].Bin, err = target.Build(ctx, target.Spec{Label: specs[i].Label, Peer: specs[i].Peer}, root, benchDir, tmp); err != nil {
			return err
		}
		built[specs[i].Peer] = specs[i].Bin
	}

	rep := &report.Compare{Workload: cfg.Workload, Rounds: cfg.Rounds, Servers: servers, Baseline: baseline, Args: args,
		Started: time.Now().UTC(), Host: report.HostInfo(), Metrics: cfg.w.Metrics()}
	for _, sp := range specs {
		if sp.Skip != "" {
			fmt.Fprintf(cli.Stderr, "skipping %s: %s\n", sp.Label, sp.Skip)
		}
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, sp := range specs {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s := sp.Label
			run := report.Run{Server: s, Round: round}
			if sp.Skip != "" {
				run.Skipped = sp.Skip
				rep.Runs = append(rep.Runs, run)
				continue
			}
			fmt.Fprintf(cli.Stderr, "== round %d/%d: %s %s\n", round, cfg.Rounds, s, cfg.Workload)
			res, err := compareOne(ctx, &cfg, sp, filepath.Join(tmp, fmt.Sprintf("%s-%d.log", s, round)))
			if res != nil {
				run.Result = report.ToMap(res)
			}
			if err != nil {
				run.Error = err.Error()
				fmt.Fprintf(cli.Stderr, "   %s round %d failed: %v\n", s, round, err)
			} else {
				fmt.Fprintf(cli.Stderr, "   %s\n", report.SummaryLine(rep.Metrics, run.Result))
			}
			rep.Runs = append(rep.Runs, run)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			proc.Sleep(ctx, cfg.Pause)
		}
	}
	rep.Summarize()
	rep.Print(cli.Stdout)
	if err := rep.Write(cfg.Out); err != nil {
		return err
	}
	report.Result(cli.Stdout, map[string]any{"workload": rep.Workload, "rounds": rep.Rounds, "servers": rep.Servers,
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
	Mode        string   // "@MODE" of -servers, "" for none (modes.go)
	ModeArgs    []string // the workload's flags for that mode (Modal)
}

// resolveServers turns -servers into specs. "wsmill" is the repository
// root's binary, except for a workload that needs broadcasts (fanout): the
// root binary has none, so there it is bench/peers/wsmill, the peer
// written on wsmill's API.
// "bin:PATH" is a prebuilt binary (an A/B of two builds), labelled by its
// base name: a build of the root wsmill, taking its flags, or for a
// workload that needs broadcasts a build of bench/peers/wsmill (go build
// -o PATH ./peers/wsmill), taking the peer's.
func resolveServers(names []string, needs Needs, modes []string) ([]serverSpec, error) {
	if len(names) == 0 {
		return nil, errors.New("-servers is empty")
	}
	var specs []serverSpec
	seen := map[string]bool{}
	for _, entry := range names {
		base, mode, err := splitServerMode(entry, modes)
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
			sp = serverSpec{Label: filepath.Base(abs), Bin: abs, WsmillFlags: !needs.Broadcast}
		case n == "wsmill" && needs.Broadcast:
			sp = serverSpec{Label: n, Peer: "wsmill"}
		case n == "wsmill":
			sp = serverSpec{Label: n, WsmillFlags: true}
		default:
			sp = serverSpec{Label: n, Peer: n}
		}
		if n == "rawecho" {
			switch {
			case needs.Broadcast:
				sp.Skip = "rawecho cannot broadcast (it echoes bytes, it has no WebSocket framing nor a connection list)"
			case needs.Pushes:
				sp.Skip = "rawecho does not push"
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

// compareOne starts one server, runs the workload against it, stops it.
func compareOne(ctx context.Context, cfg *config, sp serverSpec, logPath string) (any, error) {
	name := sp.Label
	interval, extra := cfg.w.Server(cfg.PushInterval, cfg.pushGiven)
	extra = append(extra, sp.ModeArgs...)
	if sp.WsmillFlags {
		extra = append(extra, strings.Fields(cfg.WsmillFlags)...)
	}
	extra = append(extra, sp.Args...)
	srv, err := target.Start(ctx, name, sp.Bin, interval, extra, logPath)
	if err != nil {
		return nil, err
	}
	res, rerr := cfg.w.Run(ctx, Target{Server: name, Addr: srv.Addr, PID: srv.Cmd.Process.Pid, Greeting: name != "rawecho"})
	select {
	case <-srv.Exited:
		rerr = errors.Join(rerr, fmt.Errorf("%s exited during the run (%v): %s", name, srv.Err, target.Tail(logPath, 600)))
		srv.Log.Close()
	default:
		if err := srv.Stop(); err != nil {
			fmt.Fprintf(cli.Stderr, "   %s: %v\n", name, err)
		}
	}
	return res, rerr
}
