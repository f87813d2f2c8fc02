package scale

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsmill/wsmill/bench/internal/stats"
	"github.com/wsmill/wsmill/bench/internal/testpeer"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

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

// TestMain lets the test binary serve as the scale client process.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "__scale" {
		if err := WorkerMain(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCommandFlags: a bad command line ends with a clear error before any
// server is built or started.
func TestCommandFlags(t *testing.T) {
	testpeer.FlagErrors(t, Command, nil, []testpeer.FlagCase{
		{"no connections", []string{"-n", "0"}, "need -n, -interval, -per-client, -per-src and -per-server above 0"},
		{"zero interval", []string{"-interval", "0"}, "above 0"},
		{"hold under interval", []string{"-interval", "2s", "-hold", "1s"}, "-hold must be at least one -interval"},
		{"stray argument", []string{"x"}, "unexpected arguments: x"},
	})
}
