package report

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPlotAndMarkdown(t *testing.T) {
	r := &Compare{Workload: "echo", Rounds: 2, Servers: []string{"wsmill", "gorilla"}, Metrics: []Metric{NewMetric("msgs_per_s", "msgs/s", "%.0f", "higher", 0), NewMetric("p99_us", "p99 (µs)", "%.0f", "lower", 0)},
		Host: HostInfo(), Started: time.Now()}
	for round := 1; round <= 2; round++ {
		r.Runs = append(r.Runs,
			Run{Server: "wsmill", Round: round, Result: map[string]any{"msgs_per_s": 1000.0 * float64(round)}},
			Run{Server: "gorilla", Round: round, Result: map[string]any{"msgs_per_s": 500.0}})
	}
	r.Summarize()
	if got := r.Ratios["gorilla"]["msgs_per_s"]; got != 500.0/1500.0 {
		t.Fatalf("ratio %v", got)
	}
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"compare-echo.json", "compare-echo.md", "compare-echo.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// TestPairedRatios: a round where the whole machine was slow moves both
// figures of that round; the paired ratio follows the per-round ratios
// where the ratio of medians would not, and wins count per round.
func TestPairedRatios(t *testing.T) {
	r := &Compare{Servers: []string{"wsmill", "x"}, Baseline: "wsmill",
		Metrics: []Metric{{Key: "msgs_per_s", Label: "msgs/s", Better: "higher"}, {Key: "p99_us", Label: "p99", Better: "lower"}}}
	add := func(server string, round int, msgs, p99 float64) {
		r.Runs = append(r.Runs, Run{Server: server, Round: round, Result: map[string]any{"msgs_per_s": msgs, "p99_us": p99}})
	}
	add("wsmill", 1, 100, 10)
	add("x", 1, 90, 12)
	add("wsmill", 2, 50, 10) // a slow round for both
	add("x", 2, 45, 9)
	add("wsmill", 3, 102, 10)
	add("x", 3, 110, 11)
	r.Runs = append(r.Runs, Run{Server: "x", Round: 4, Error: "boom"})
	r.Summarize()
	if got := r.Paired["x"]["msgs_per_s"]; math.Abs(got-0.9) > 1e-9 {
		t.Fatalf("paired msgs/s: got %v; want 0.9 (per round 0.9, 0.9, 1.078)", got)
	}
	if got := r.Wins["x"]["msgs_per_s"]; got != 1 {
		t.Fatalf("wins msgs/s: got %d; want 1", got)
	}
	if got := r.Wins["x"]["p99_us"]; got != 1 {
		t.Fatalf("wins p99 (lower is better): got %d; want 1", got)
	}
	if _, ok := r.Paired["wsmill"]; ok {
		t.Fatal("the baseline has paired ratios; want none")
	}
	lines := r.PairedLines()
	if len(lines) != 1 || !strings.Contains(lines[0], "msgs/s 0.90× (better than wsmill in 1 of 3 rounds)") {
		t.Fatalf("paired lines: %q", lines)
	}
}
