// Command wsload is the end-to-end load generator for wsmill and the peer
// servers in bench/peers. Every server under test follows one contract:
// flags -addr and -push-interval; GET /ws upgrades; the server greets with
// "Hi Client!", echoes every message with its opcode, and pushes its local
// time every push interval.
//
// This file only dispatches: each subcommand is a package under
// bench/workload (its doc.go says what it measures, how, and what it
// writes). Adding a workload is one package and one line in subcommands
// (with its Worker if it runs client processes through internal/fleet, and
// its Compared if compare may run it).
//
// Each subcommand prints a human table and then one line "RESULT {json}".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/workload/compare"
	"github.com/wsmill/wsmill/bench/workload/connections"
	"github.com/wsmill/wsmill/bench/workload/echo"
	"github.com/wsmill/wsmill/bench/workload/fanout"
	"github.com/wsmill/wsmill/bench/workload/push"
	"github.com/wsmill/wsmill/bench/workload/roomfan"
	"github.com/wsmill/wsmill/bench/workload/scale"
	"github.com/wsmill/wsmill/bench/workload/soak"
)

// subcommand is one workload: its command, the worker its client processes
// run ("__worker" mode NAME), and how compare runs it (nil: not comparable).
type subcommand struct {
	name     string
	command  func(ctx context.Context, args []string) error
	worker   fleet.WorkerFunc
	compared func() compare.Workload
	usage    string
}

var subcommands = []subcommand{
	{"connections", connections.Command, connections.Worker, connections.Compared, "-addr HOST:PORT -n N [-procs P] [-src 127.0.0.2,127.0.0.3] [-pid PID] [-greeting=true] [-hold 5s]"},
	{"echo", echo.Command, echo.Worker, echo.Compared, "-addr HOST:PORT [-c 10] [-size 128] [-k 1] [-duration 10s] [-pid PID] [-text] [-greeting=true] [-deflate] [-payload seq|json]"},
	{"push", push.Command, push.Worker, push.Compared, "-addr HOST:PORT [-n 1000] [-interval 1s] [-duration 30s] [-pid PID] [-slow-pct 1] [-procs P] [-src ...]"},
	{"fanout", fanout.Command, fanout.Worker, fanout.Compared, "-addr HOST:PORT [-n 2000] [-interval 1s] [-duration 20s] [-pid PID] [-procs P] [-src ...] [-rooms R]\n" +
		"the server (started with -fanout-interval) broadcasts \"F\"+unix ns; latency of\n" +
		"every delivery and time for each broadcast to reach the last connection"},
	{"soak", soak.Command, soak.Worker, nil, "-addr HOST:PORT -pid PID [-duration 3m] [-good 200] [-bad 20] [-mix hog=50,idle=0] [-interval 1s]\n" +
		"good clients mixed with 8 hostile behaviours; exits non-zero unless every good\n" +
		"client was served and the server's fds and RSS came back to the baseline"},
	{"scale", scale.Command, nil, nil, "-n N [-step S] [-interval 5s] [-hold 15s] [-servers K] [-server-bin PATH] [-out DIR]\n" +
		"starts K wsmill processes with -reuseport and epoll client processes, holds N\n" +
		"connections in steps, checks every greeting and every push of every connection"},
	{"compare", compare.Command, nil, nil, "-workload echo|connections|push|fanout [-rounds 3] [-servers wsmill,gorilla,gws,nbio,rawecho,bin:PATH] [-out DIR] [workload flags]"},
	{"roomfan", roomfan.Command, nil, nil, "[-n 18000] [-layouts 1,2] [-rounds 2] [-interval 1s] [-duration 15s] [-out DIR]\n" +
		"one chat room across wsmill instances: 1 × N alone against 2 × N/2 over NATS\n" +
		"(nats-server embedded), time to the last subscriber and CPU per message"},
	{"plot", func(_ context.Context, args []string) error { return compare.PlotCommand(args) }, nil, nil, "-in DIR/compare-WORKLOAD.json [-out FILE.png]"},
}

func usage() string {
	s := "wsload: end-to-end load generator for WebSocket servers\n\nusage:\n"
	for _, c := range subcommands {
		s += fmt.Sprintf("  wsload %-11s %s\n", c.name, indent(c.usage))
	}
	return s + "\n\"wsload SUBCOMMAND -h\" lists a subcommand's flags. Each subcommand prints a\ntable, then a single line \"RESULT \" followed by JSON.\n"
}

// indent puts a usage's continuation lines under its first flag.
func indent(u string) string {
	out := []byte{}
	for i := 0; i < len(u); i++ {
		out = append(out, u[i])
		if u[i] == '\n' {
			out = append(out, "                     "...)
		}
	}
	return string(out)
}

func main() {
	for _, c := range subcommands {
		if c.worker != nil {
			fleet.RegisterWorker(c.name, c.worker)
		}
		if c.compared != nil {
			compare.Register(c.name, c.compared)
		}
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage())
		os.Exit(2)
	}
	sub, args := os.Args[1], os.Args[2:]
	switch sub {
	case "__scale": // a scale client process
		if err := scale.WorkerMain(); err != nil {
			fmt.Fprintf(os.Stderr, "wsload scale client: %v\n", err)
			os.Exit(1)
		}
		return
	case "__worker": // a client process of a fleet workload
		if err := fleet.Main(); err != nil {
			fmt.Fprintf(os.Stderr, "wsload worker: %v\n", err)
			os.Exit(1)
		}
		return
	case "help", "-h", "-help", "--help":
		fmt.Fprint(cli.Stdout, usage())
		return
	}
	var run func(context.Context, []string) error
	for _, c := range subcommands {
		if c.name == sub {
			run = c.command
		}
	}
	if run == nil {
		fmt.Fprintf(os.Stderr, "wsload: unknown subcommand %q\n\n%s", sub, usage())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, args)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w", err)
		}
		fmt.Fprintf(os.Stderr, "wsload %s: %v\n", sub, err)
		os.Exit(1)
	}
}
