// Command wsload is the end-to-end load generator for wsmill and the peer
// servers in bench/peers. Every server under test follows one contract:
// flags -addr and -push-interval; GET /ws upgrades; the server greets with
// "Hi Client!", echoes every message with its opcode, and pushes its local
// time every push interval.
//
//	wsload connections -addr HOST:PORT -n N [-procs P] [-src A,B] -pid PID
//	wsload echo        -addr HOST:PORT -c C -size B -k K -duration D -pid PID
//	wsload push        -addr HOST:PORT -n N -interval I -duration D -pid PID [-slow-pct X]
//	wsload fanout      -addr HOST:PORT -n N -interval I -duration D -pid PID [-procs P] [-src A,B]
//	wsload soak        -addr HOST:PORT -pid PID [-duration 3m] [-good 200] [-bad 20] [-mix hog=50,...]
//	wsload scale       -n N [-step S] [-interval 5s] [-hold 15s] [-server-bin PATH]
//	wsload compare     -workload echo|connections|push|fanout -rounds R -servers wsmill,gorilla,...|bin:PATH [workload flags]
//	wsload plot        -in results/compare-echo.json
//
// Each prints a human table and then one line "RESULT {json}".
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
	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/workload/compare"
	"github.com/wsmill/wsmill/bench/workload/connections"
	"github.com/wsmill/wsmill/bench/workload/echo"
	"github.com/wsmill/wsmill/bench/workload/push"
	"github.com/wsmill/wsmill/bench/workload/scale"
	"github.com/wsmill/wsmill/bench/workload/soak"
)

const usage = `wsload: end-to-end load generator for WebSocket servers

usage:
  wsload connections -addr HOST:PORT -n N [-procs P] [-src 127.0.0.2,127.0.0.3] [-pid PID] [-greeting=true] [-hold 5s]
  wsload echo        -addr HOST:PORT [-c 10] [-size 128] [-k 1] [-duration 10s] [-pid PID] [-text] [-greeting=true] [-deflate] [-payload seq|json]
  wsload push        -addr HOST:PORT [-n 1000] [-interval 1s] [-duration 30s] [-pid PID] [-slow-pct 1] [-procs P] [-src ...]
  wsload fanout      -addr HOST:PORT [-n 2000] [-interval 1s] [-duration 20s] [-pid PID] [-procs P] [-src ...]
                     the server (started with -fanout-interval) broadcasts "F"+unix ns; latency of
                     every delivery and time for each broadcast to reach the last connection
  wsload soak        -addr HOST:PORT -pid PID [-duration 3m] [-good 200] [-bad 20] [-mix hog=50,idle=0] [-interval 1s]
                     good clients mixed with 8 hostile behaviours; exits non-zero unless every good
                     client was served and the server's fds and RSS came back to the baseline
  wsload scale       -n N [-step S] [-interval 5s] [-hold 15s] [-servers K] [-server-bin PATH] [-out DIR]
                     starts K wsmill processes with -reuseport and epoll client processes, holds N
                     connections in steps, checks every greeting and every push of every connection
  wsload compare     -workload echo|connections|push|fanout [-rounds 3] [-servers wsmill,gorilla,gws,nbio,rawecho,bin:PATH] [-out DIR] [workload flags]
  wsload plot        -in DIR/compare-WORKLOAD.json [-out FILE.png]

"wsload SUBCOMMAND -h" lists a subcommand's flags. Each subcommand prints a
table, then a single line "RESULT " followed by JSON.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	for mode, fn := range map[string]fleet.WorkerFunc{"connections": connections.Worker, "echo": echo.Worker, "push": push.Worker, "fanout": fanoutWorker, "soak": soak.Worker} {
		fleet.RegisterWorker(mode, fn)
	}
	compare.Register("connections", connections.Compared)
	compare.Register("echo", echo.Compared)
	compare.Register("push", push.Compared)
	compare.Register("fanout", func() compare.Workload { return &fanoutCompared{} })
	sub, args := os.Args[1], os.Args[2:]
	if sub == "__scale" {
		if err := scale.WorkerMain(); err != nil {
			fmt.Fprintf(os.Stderr, "wsload scale client: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if sub == "__worker" {
		if err := fleet.Main(); err != nil {
			fmt.Fprintf(os.Stderr, "wsload worker: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch sub {
	case "connections":
		err = connections.Command(ctx, args)
	case "echo":
		err = echo.Command(ctx, args)
	case "push":
		err = push.Command(ctx, args)
	case "fanout":
		err = cmdFanout(ctx, args)
	case "soak":
		err = soak.Command(ctx, args)
	case "scale":
		err = scale.Command(ctx, args)
	case "compare":
		err = compare.Command(ctx, args)
	case "plot":
		err = compare.PlotCommand(args)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(cli.Stdout, usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "wsload: unknown subcommand %q\n\n%s", sub, usage)
		os.Exit(2)
	}
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

func cmdFanout(ctx context.Context, args []string) error {
	var cfg fanoutConfig
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	cfg.register(fs, true)
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	res, err := runFanout(ctx, cfg)
	if res != nil {
		printFanout(cli.Stdout, res)
		report.Result(cli.Stdout, res)
	}
	return err
}
