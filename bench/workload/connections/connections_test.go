package connections

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/testpeer"
)

func TestMain(m *testing.M) { testpeer.Main(m, map[string]fleet.WorkerFunc{"connections": Worker}) }

func TestConnectionsEndToEnd(t *testing.T) {
	addr := testpeer.Server(t, 100*time.Millisecond)
	cr, err := Run(context.Background(), Config{Target: cli.Target{Addr: addr, PID: os.Getpid()}, N: 50,
		Dialing:  fleet.Dialing{Procs: 2, Src: "127.0.0.2,127.0.0.3", DialConc: 8, DialTimeout: 5 * time.Second},
		Greeting: true, Hold: 100 * time.Millisecond, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if cr.Connected != 50 || cr.LostDuringHold != 0 || cr.After == nil {
		t.Fatalf("connections: %+v", cr)
	}
	// The test process is the server here (and the workers' parent, whose
	// pipes count too): at least 50 more fds while connected.
	if d := cr.After.FDs - cr.Before.FDs; d < 50 || d > 60 {
		t.Fatalf("fds %d -> %d", cr.Before.FDs, cr.After.FDs)
	}
}

// TestCommandFlags: a bad command line ends with a clear error before any
// connection is dialed (the address is one nothing listens on).
func TestCommandFlags(t *testing.T) {
	testpeer.FlagErrors(t, Command, []string{"-addr", "127.0.0.1:1"}, []testpeer.FlagCase{
		{"no connections", []string{"-n", "0"}, "-n must be at least 1"},
		{"stray argument", []string{"-n", "5", "now"}, "unexpected arguments: now"},
		{"unknown flag", []string{"-conns", "5"}, "flag provided but not defined: -conns"},
		{"bad duration", []string{"-hold", "5"}, "invalid value \"5\" for flag -hold"},
	})
}
