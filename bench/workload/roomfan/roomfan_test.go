package roomfan

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFlags(t *testing.T) {
	parse := func(args ...string) error {
		var c Config
		fs := flag.NewFlagSet("roomfan", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		l := c.flags(fs)
		if err := fs.Parse(args); err != nil {
			return err
		}
		var err error
		if c.Layouts, err = parseLayouts(*l); err != nil {
			return err
		}
		return c.validate()
	}
	if err := parse(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, bad := range [][]string{
		{"-layouts", "0"}, {"-layouts", "1,x"}, {"-layouts", "9"}, {"-layouts", ""},
		{"-n", "1", "-layouts", "1,2"}, {"-rounds", "0"}, {"-interval", "0s"},
		{"-duration", "1s", "-interval", "2s"}, {"-settle", "0s"}, {"-grace", "-1s"},
		{"-room", "a.b"}, {"-room", "a>"}, {"-room", ""},
	} {
		if err := parse(bad...); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestShares(t *testing.T) {
	for _, tt := range []struct {
		n, k int
		want string
	}{{18000, 2, "[9000 9000]"}, {18000, 1, "[18000]"}, {7, 3, "[3 2 2]"}} {
		if got := fmt.Sprint(shares(tt.n, tt.k)); got != tt.want {
			t.Errorf("shares(%d, %d) = %s; want %s", tt.n, tt.k, got, tt.want)
		}
	}
}

func TestParseResult(t *testing.T) {
	var r fanoutRecord
	out := []byte("a table\nRESULT {\"open\":9000,\"last_p50_ms\":12.5,\"bcasts\":[{\"t\":5,\"n\":9000,\"max\":7000000}]}\n")
	if err := parseResult(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Open != 9000 || r.LastP50ms != 12.5 || len(r.Bcasts) != 1 || r.Bcasts[0].MaxNs != 7e6 {
		t.Errorf("got %+v", r)
	}
	if err := parseResult([]byte("no result\n"), &r); err == nil {
		t.Error("no RESULT line: no error")
	}
	if err := parseResult([]byte("RESULT {bad\n"), &r); err == nil {
		t.Error("bad JSON: no error")
	}
}

// TestFill: a message's time to the last subscriber is the latest over the
// instances, reached subscribers add up, and what nobody saw is missing
// for everyone.
func TestFill(t *testing.T) {
	recs := []fanoutRecord{
		{Open: 3, ServerCPU: 0.3, P50ms: 1, Bcasts: []bcast{{Send: 1, N: 3, MaxNs: 2e6}, {Send: 2, N: 3, MaxNs: 4e6}, {Send: 3, N: 2, MaxNs: 1e6}}},
		{Open: 2, ServerCPU: 0.1, P50ms: 2, Dups: 1, Bcasts: []bcast{{Send: 1, N: 2, MaxNs: 5e6}, {Send: 2, N: 2, MaxNs: 1e6}, {Send: 3, N: 2, MaxNs: 3e6}}},
	}
	r := Run{Sent: 4, NATSCPU: 0.04}
	r.fill(recs, []string{"a", "b"}, []int{3, 2})
	if r.Open != 5 || r.Messages != 3 || r.Complete != 2 {
		t.Errorf("open %d, messages %d, complete %d; want 5, 3, 2", r.Open, r.Messages, r.Complete)
	}
	// message 3 missed one subscriber; message 4 was seen by nobody.
	if r.Missing != 1+5 {
		t.Errorf("missing %d; want 6", r.Missing)
	}
	if r.LastMaxMs != 5 || r.LastP50ms != 4 {
		t.Errorf("to last p50 %v, max %v; want 4, 5 (latest per message: 5, 4, 3)", r.LastP50ms, r.LastMaxMs)
	}
	if r.WsmillCPUMs != 100 || r.NATSCPUMs != 10 || r.TotalCPUMs != 110 {
		t.Errorf("CPU per message %v + %v = %v; want 100 + 10 = 110 ms", r.WsmillCPUMs, r.NATSCPUMs, r.TotalCPUMs)
	}
	if r.Dups != 1 || len(r.PerInstance) != 2 || r.PerInstance[1].CPUPerMsgMs != 25 {
		t.Errorf("dups %d, per instance %+v", r.Dups, r.PerInstance)
	}
}

func TestSummarize(t *testing.T) {
	run := func(round, k int, last, cpu float64) Run {
		r := Run{Round: round, Instances: k, LastP50ms: last, TotalCPUMs: cpu}
		for i := 0; i < k; i++ {
			r.PerInstance = append(r.PerInstance, Instance{P50ms: float64(i + 1)})
		}
		return r
	}
	runs := []Run{run(1, 1, 10, 100), run(1, 2, 15, 120), run(2, 1, 20, 100), run(2, 2, 20, 150)}
	s := summarize(runs, []int{1, 2})
	if len(s) != 2 || s[0].LastRatio != 1 || s[0].CPURatio != 1 {
		t.Fatalf("baseline %+v", s)
	}
	// paired: 15/10 and 20/20 -> median 1.25; CPU 1.2 and 1.5 -> 1.35.
	if s[1].LastRatio != 1.25 || s[1].CPURatio != 1.35 || s[1].LastP50ms != 17.5 || s[1].Delivery1P50 != 2 {
		t.Errorf("2 instances: %+v", s[1])
	}
	md := markdown(&Result{Started: time.Unix(0, 0), N: 18000, Layouts: []int{1, 2}, Runs: runs, Summary: s})
	for _, want := range []string{"| 1 × 18000 (no NATS) |", "| 2 × 9000 (over NATS) |", "17.5 (1.25×)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
