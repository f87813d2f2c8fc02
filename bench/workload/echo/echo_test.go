package echo

import (
	"context"
	"io"
	"os"
	"strings"
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
	cli.Stderr = io.Discard
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no connections", []string{"-c", "0"}, "-c, -k and -size must be at least 1"},
		{"nothing outstanding", []string{"-k", "0"}, "-c, -k and -size must be at least 1"},
		{"empty message", []string{"-size", "0"}, "-c, -k and -size must be at least 1"},
		{"no window", []string{"-duration", "0s"}, "-duration must be positive"},
		{"unknown payload", []string{"-payload", "random"}, "random"},
		{"json too small", []string{"-payload", "json", "-size", "10"}, "-payload json needs -size 53 or more"},
		{"stray argument", []string{"x"}, "unexpected arguments: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Command(context.Background(), append([]string{"-addr", "127.0.0.1:1"}, tt.args...))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error containing %q", err, tt.want)
			}
		})
	}
}
