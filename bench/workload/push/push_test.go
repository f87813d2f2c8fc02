package push

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/testpeer"
)

func TestIsSlowSpread(t *testing.T) {
	n := 0
	for g := 0; g < 19000; g++ {
		if isSlow(g, 1) {
			n++
		}
	}
	if n != 190 {
		t.Fatalf("1%% of 19000 = %d, want 190", n)
	}
	if isSlow(5, 0) {
		t.Fatal("0% marks a connection slow")
	}
}

func TestPushEndToEnd(t *testing.T) {
	addr := testpeer.Server(t, 100*time.Millisecond)
	pr, err := Run(context.Background(), Config{Target: cli.Target{Addr: addr, PID: os.Getpid()}, N: 20, Interval: 100 * time.Millisecond,
		Duration: time.Second, SlowPct: 10, SlowBuf: 4096, SlowEvery: 10 * time.Millisecond, SlowSize: 1024,
		Dialing: fleet.Dialing{Procs: 2, DialConc: 8, DialTimeout: 5 * time.Second}, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Normal != 18 || pr.Slow != 2 || pr.Gaps == 0 || pr.Expected != 10 || pr.SlowSent == 0 {
		t.Fatalf("push: %+v", pr)
	}
}

func TestMain(m *testing.M) { testpeer.Main(m, map[string]fleet.WorkerFunc{"push": Worker}) }

// TestCommandFlags: a bad command line ends with a clear error before any
// connection is dialed (the address is one nothing listens on).
func TestCommandFlags(t *testing.T) {
	testpeer.FlagErrors(t, Command, []string{"-addr", "127.0.0.1:1"}, []testpeer.FlagCase{
		{"no connections", []string{"-n", "0"}, "need -n ≥ 1, -interval > 0 and -duration ≥ -interval"},
		{"window under the interval", []string{"-interval", "2s", "-duration", "1s"}, "-duration ≥ -interval"},
		{"slow 100%", []string{"-slow-pct", "100"}, "-slow-pct must be in [0, 100)"},
		{"slow negative", []string{"-slow-pct", "-1"}, "-slow-pct must be in [0, 100)"},
		{"stray argument", []string{"x"}, "unexpected arguments: x"},
	})
}
