package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/stats"
	"github.com/wsmill/wsmill/bench/internal/testpeer"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

// TestMain lets the test binary serve as the worker process: the pool
// re-executes os.Executable() with "__worker".
func TestMain(m *testing.M) {
	for mode, fn := range map[string]fleet.WorkerFunc{"echo": echoWorker, "fanout": fanoutWorker} {
		fleet.RegisterWorker(mode, fn)
	}
	if len(os.Args) > 1 && os.Args[1] == "__scale" {
		if err := scaleWorkerMain(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == "__worker" {
		if err := fleet.Main(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestEchoPayloadIsNotAPush(t *testing.T) {
	p := make([]byte, len(wsclient.TimeLayout))
	for seq := uint64(0); seq < 1000; seq++ {
		echoPayload(p, seq)
		if wsclient.IsPush(wsclient.OpText, p) {
			t.Fatalf("payload %q looks like a push", p)
		}
	}
	if !wsclient.IsPush(wsclient.OpText, []byte(time.Now().Format(wsclient.TimeLayout))) {
		t.Fatal("a time push is not recognised")
	}
}

func TestEchoEndToEnd(t *testing.T) {
	addr := testpeer.Server(t, 50*time.Millisecond)
	for _, procs := range []int{1, 2} {
		res, err := runEcho(context.Background(), echoConfig{Addr: addr, PID: os.Getpid(), C: 4, Size: 200, K: 3,
			Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond, Greeting: true, Procs: procs,
			DialConc: 4, DialTimeout: 5 * time.Second, Text: procs == 2, Quiet: true})
		if err != nil {
			t.Fatalf("procs %d: %v", procs, err)
		}
		if res.Msgs == 0 || res.Mismatch != 0 || res.Lost != 0 || res.P50us <= 0 || res.Pushes == 0 {
			t.Fatalf("procs %d: %+v", procs, res)
		}
	}
}

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
	res, err := runFanout(context.Background(), fanoutConfig{Addr: addr, PID: os.Getpid(), N: 20, Interval: 50 * time.Millisecond,
		Duration: 500 * time.Millisecond, Grace: 300 * time.Millisecond, Procs: 2, DialConc: 8, DialTimeout: 5 * time.Second, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Open != 20 || res.Broadcasts < 8 || res.Missing != 0 || res.Deliveries != int64(20*res.Broadcasts) ||
		res.StampedPct != 100 || res.LastP50ms <= 0 || res.LastP50ms > res.MaxMs || res.P50ms > res.ReadP50ms {
		t.Fatalf("%+v", res)
	}
}

// TestScale runs wsload scale for real: wsmill built from the repository,
// 3 processes on one port with -reuseport, 3,000 connections in two steps
// from two client processes and three source addresses; every greeting and
// every push of every connection must arrive.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wsmill")
	}
	out := t.TempDir()
	res, err := runScale(context.Background(), scaleConfig{N: 3000, Step: 1500, Servers: 3, PerServer: 1000,
		PerClient: 1500, PerSrc: 1000, Interval: time.Second, Hold: 2 * time.Second, Workers: 1, GoMaxProcs: 1, ClientProcs: 2,
		MaxConns: 19900, ServerFlags: "-idle-timeout 0", DialConc: 64, DialTimeout: 10 * time.Second, Out: out,
		MinAvailMiB: 256, MaxFailPct: 0, StopOnMiss: true, Timeout: 2 * time.Minute, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Servers != 3 || res.Clients != 2 || res.Sources != 3 || len(res.Steps) != 2 {
		t.Fatalf("got %d servers, %d clients, %d sources, %d steps; want 3, 2, 3, 2", res.Servers, res.Clients, res.Sources, len(res.Steps))
	}
	for _, s := range res.Steps {
		if !s.Held || s.Open != s.Target || s.Failed != 0 || s.Missed != 0 || s.PushesReceived != s.PushesExpected ||
			s.PushesExpected != int64(s.Target)*2 || s.Stale != 0 {
			t.Errorf("step %d: %s (%+v)", s.Target, stepLine(s), s.Errors)
		}
		if s.PerServerMin <= 0 {
			t.Errorf("step %d: a server got no connection (%d–%d per server)", s.Target, s.PerServerMin, s.PerServerMax)
		}
	}
	if res.Largest != 3000 || res.Stopped != "" {
		t.Errorf("largest held %d, stopped %q; want 3000, \"\"", res.Largest, res.Stopped)
	}
	sd := res.Shutdown
	if sd == nil || sd.Closes["Close 1001"] != 3000 || sd.ServerTotals["upgraded"] != 3000 || sd.ServerErrors != "" {
		t.Errorf("shutdown: %+v", sd)
	}
	for _, f := range []string{"scale.json", "scale.md", "scale-lag.png"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestScaleFeed feeds the scale client's parser a greeting, pushes, an
// oversized frame and a Close, whole and in chunks of every size.
func TestScaleFeed(t *testing.T) {
	var stream []byte
	frame := func(op byte, p string) {
		stream = append(stream, 0x80|op, byte(len(p)))
		stream = append(stream, p...)
	}
	frame(wsclient.OpText, wsclient.Greeting)
	frame(wsclient.OpText, "2026-11-29 23:05:55")
	big := strings.Repeat("x", 200)
	stream = append(stream, 0x82, 126, 0, 200)
	stream = append(stream, big...)
	frame(wsclient.OpText, "2026-11-29 23:05:56")
	frame(wsclient.OpText, "not a time push!!!!")
	frame(wsclient.OpClose, "\x03\xe9")
	for _, chunk := range []int{1, 2, 3, 7, 21, 1000} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			w := &scaleWorker{iv: int64(time.Second), conns: make([]scConn, 4), hs: make([]*hsState, 4),
				stepErrs: map[string]int{}, lost: map[string]int{}, closes: map[string]int{}, unexpect: map[string]int{},
				gapH: stats.GapHist(), phaseH: stats.GapHist(), ws: 1, we: int64(time.Hour), base: time.Now()}
			const fd = 3
			w.hs[fd] = &hsState{response: true}
			w.pending = []int32{fd}
			c := &w.conns[fd]
			c.state, c.inWin = stUpgrading, true
			for i := 0; i < len(stream); i += chunk {
				w.feed(fd, c, append([]byte(nil), stream[i:min(i+chunk, len(stream))]...), int64(i+1)*int64(time.Millisecond))
			}
			if w.open != 1 || w.stepOK != 1 || len(w.pending) != 0 {
				t.Errorf("greeting: open %d, ok %d, pending %d; want 1, 1, 0", w.open, w.stepOK, len(w.pending))
			}
			if c.count != 2 {
				t.Errorf("pushes counted %d; want 2", c.count)
			}
			if c.state != stClosing || w.lost["Close 1001"] != 1 {
				t.Errorf("state %d, lost %v; want closing after Close 1001", c.state, w.lost)
			}
			// The binary frame is skipped by its length when it is split, or
			// seen whole when a read holds it all.
			if w.unexpect["frame op 2 over 35 bytes"]+w.unexpect["frame op 2"] != 1 || w.unexpect["text that is not a time push"] != 1 {
				t.Errorf("unexpected %v", w.unexpect)
			}
		})
	}
}

func TestScaleHelpers(t *testing.T) {
	if got := srcAddrs(3); strings.Join(got, ",") != "127.0.0.2,127.0.0.3,127.0.0.4" {
		t.Errorf("srcAddrs(3) = %v", got)
	}
	if got := srcAddrs(256)[252:]; strings.Join(got, ",") != "127.0.0.254,127.0.1.1,127.0.1.2,127.0.1.3" {
		t.Errorf("srcAddrs(256)[252:] = %v", got)
	}
	tests := []struct {
		name string
		p    string
		time bool
	}{
		{"push", "2026-11-29 23:05:55", true},
		{"greeting", wsclient.Greeting, false},
		{"letters", "2026-11-29 23:05:5x", false},
		{"separator", "2026-11-29T23:05:55", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := looksLikeTime([]byte(tt.p)); got != tt.time {
				t.Errorf("looksLikeTime(%q) = %v; want %v", tt.p, got, tt.time)
			}
		})
	}
	now := time.Date(2026, 11, 29, 0, 0, 1, 0, time.Local)
	if !pushIsFresh([]byte("2026-11-28 23:59:59"), now) || pushIsFresh([]byte("2026-11-29 00:00:05"), now) {
		t.Error("pushIsFresh: midnight wrap or a 4 s difference misjudged")
	}
	for total, parts := range map[int]int{3000: 2, 7: 3} {
		sum := 0
		for i := range parts {
			sum += share(total, parts, i)
		}
		if sum != total {
			t.Errorf("shares of %d over %d add up to %d", total, parts, sum)
		}
	}
}
