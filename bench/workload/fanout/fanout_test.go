package fanout

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/stats"
	"github.com/wsmill/wsmill/bench/internal/testpeer"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

func TestParseFanout(t *testing.T) {
	tests := []struct {
		name string
		Op   byte
		p    string
		want int64
		ok   bool
	}{
		{"send time", wsclient.OpText, "F1732912345123456789", 1732912345123456789, true},
		{"small", wsclient.OpText, "F7", 7, true},
		{"binary", wsclient.OpBinary, "F1732912345123456789", 0, false},
		{"greeting", wsclient.OpText, wsclient.Greeting, 0, false},
		{"time push", wsclient.OpText, "2026-11-29 22:56:37", 0, false},
		{"no digits", wsclient.OpText, "F", 0, false},
		{"not a digit", wsclient.OpText, "F12x4", 0, false},
		{"overflow", wsclient.OpText, "F9999999999999999999", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseFanout(tt.Op, []byte(tt.p))
			if got != tt.want || ok != tt.ok {
				t.Fatalf("got %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestFanoutStats merges two workers' broadcasts by hand: deliveries add
// up, the later arrival wins, missing is open minus delivered, and the
// time-to-last quantiles are nearest-rank over broadcasts.
func TestFanoutStats(t *testing.T) {
	const ms = int64(time.Millisecond)
	w1 := []fanoutBcast{{Send: 300, N: 2, MaxNs: 4 * ms, ReadMaxNs: 5 * ms}, {Send: 100, N: 2, MaxNs: 1 * ms, ReadMaxNs: 2 * ms}}
	w2 := []fanoutBcast{{Send: 100, N: 3, MaxNs: 3 * ms, ReadMaxNs: 3 * ms}, {Send: 200, N: 3, MaxNs: 2 * ms, ReadMaxNs: 9 * ms}}
	got := mergeBcasts(w1, w2)
	want := []fanoutBcast{
		{Send: 100, N: 5, MaxNs: 3 * ms, ReadMaxNs: 3 * ms},
		{Send: 200, N: 3, MaxNs: 2 * ms, ReadMaxNs: 9 * ms},
		{Send: 300, N: 2, MaxNs: 4 * ms, ReadMaxNs: 5 * ms},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("broadcast %d: got %+v; want %+v", i, got[i], want[i])
		}
	}
	// 5 connections open: the second broadcast missed 2, the third 3.
	if missing, complete := missingDeliveries(got, 5); missing != 5 || complete != 1 {
		t.Fatalf("missing, complete: got %d, %d; want 5, 1", missing, complete)
	}
	if p50, p99, mx := lastQuantiles(got, false); p50 != 3 || p99 != 4 || mx != 4 {
		t.Fatalf("to last: got %v / %v / %v ms; want 3 / 4 / 4", p50, p99, mx)
	}
	if p50, _, mx := lastQuantiles(got, true); p50 != 5 || mx != 9 {
		t.Fatalf("to last read: got p50 %v, max %v ms; want 5, 9", p50, mx)
	}
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(100 - i) // 100..1, unsorted
	}
	for _, q := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := stats.Quantile(v, q.q); got != q.want {
			t.Fatalf("stats.Quantile(%v): got %v; want %v", q.q, got, q.want)
		}
	}
	if stats.Quantile(nil, 0.5) != 0 {
		t.Fatal("quantile of nothing is not 0")
	}
}

func TestFanoutEndToEnd(t *testing.T) {
	addr := testpeer.Fanout(t, 50*time.Millisecond)
	res, err := Run(context.Background(), Config{Target: cli.Target{Addr: addr, PID: os.Getpid()}, N: 20, Interval: 50 * time.Millisecond,
		Duration: 500 * time.Millisecond, Grace: 300 * time.Millisecond, Dialing: fleet.Dialing{Procs: 2, DialConc: 8, DialTimeout: 5 * time.Second}, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Open != 20 || res.Broadcasts < 8 || res.Missing != 0 || res.Deliveries != int64(20*res.Broadcasts) ||
		res.StampedPct != 100 || res.LastP50ms <= 0 || res.LastP50ms > res.MaxMs || res.P50ms > res.ReadP50ms {
		t.Fatalf("%+v", res)
	}
}

func TestMain(m *testing.M) { testpeer.Main(m, map[string]fleet.WorkerFunc{"fanout": Worker}) }

// TestCommandFlags: a bad command line ends with a clear error before any
// connection is dialed (the address is one nothing listens on).
func TestCommandFlags(t *testing.T) {
	testpeer.FlagErrors(t, Command, []string{"-addr", "127.0.0.1:1"}, []testpeer.FlagCase{
		{"no connections", []string{"-n", "0"}, "need -n ≥ 1, -interval > 0, -duration ≥ -interval and -grace ≥ 0"},
		{"window under the interval", []string{"-interval", "2s", "-duration", "1s"}, "-duration ≥ -interval"},
		{"negative grace", []string{"-grace", "-1s"}, "-grace ≥ 0"},
		{"more rooms than connections", []string{"-n", "10", "-rooms", "11"}, "rooms"},
		{"stray argument", []string{"x"}, "unexpected arguments: x"},
	})
}
