package echo

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/testpeer"
)

func TestEchoEndToEnd(t *testing.T) {
	addr := testpeer.Server(t, 50*time.Millisecond)
	for _, procs := range []int{1, 2} {
		res, err := Run(context.Background(), Config{Target: cli.Target{Addr: addr, PID: os.Getpid()}, C: 4, Size: 200, K: 3,
			Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond, Greeting: true, Dialing: fleet.Dialing{Procs: procs, DialConc: 4, DialTimeout: 5 * time.Second},
			Text: procs == 2, Quiet: true})
		if err != nil {
			t.Fatalf("procs %d: %v", procs, err)
		}
		if res.Msgs == 0 || res.Mismatch != 0 || res.Lost != 0 || res.P50us <= 0 || res.Pushes == 0 {
			t.Fatalf("procs %d: %+v", procs, res)
		}
	}
}

func TestMain(m *testing.M) { testpeer.Main(m, map[string]fleet.WorkerFunc{"echo": Worker}) }

// TestCommandFlags: a bad command line ends with a clear error before any
// connection is dialed (the address is one nothing listens on).
func TestCommandFlags(t *testing.T) {
	testpeer.FlagErrors(t, Command, []string{"-addr", "127.0.0.1:1"}, []testpeer.FlagCase{
		{"no connections", []string{"-c", "0"}, "-c, -k and -size must be at least 1"},
		{"nothing outstanding", []string{"-k", "0"}, "-c, -k and -size must be at least 1"},
		{"empty message", []string{"-size", "0"}, "-c, -k and -size must be at least 1"},
		{"no window", []string{"-duration", "0s"}, "-duration must be positive"},
		{"unknown payload", []string{"-payload", "random"}, "random"},
		{"json too small", []string{"-payload", "json", "-size", "10"}, "-payload json needs -size 53 or more"},
		{"stray argument", []string{"x"}, "unexpected arguments: x"},
	})
}
