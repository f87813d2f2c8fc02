package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sample is a two-server, two-round echo comparison whose medians and
// ratios are known: wsmill 100 and 300 msgs/s (median 200), x 100 and 100
// (median 100, ratio 0.5, paired ratios 1 and 1/3: median 2/3), x's second
// round failing on p99.
func sample() *Compare {
	r := &Compare{Workload: "echo", Rounds: 2, Servers: []string{"wsmill", "x"}, Baseline: "wsmill",
		Args: []string{"-workload", "echo"}, Started: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
		Host:    map[string]string{"os": "linux/amd64", "cpus": "2", "go": "go1.26"},
		Metrics: []Metric{NewMetric("msgs_per_s", "msgs/s", "%.0f", "higher", 0), NewMetric("server.rss", "RSS (MiB)", "%.1f", "lower", 1.0/(1<<20))}}
	r.Runs = []Run{
		{Server: "wsmill", Round: 1, Result: map[string]any{"msgs_per_s": 100.0, "server": map[string]any{"rss": float64(2 << 20)}}},
		{Server: "x", Round: 1, Result: map[string]any{"msgs_per_s": 100.0, "server": map[string]any{"rss": float64(4 << 20)}}},
		{Server: "wsmill", Round: 2, Result: map[string]any{"msgs_per_s": 300.0, "server": map[string]any{"rss": float64(2 << 20)}}},
		{Server: "x", Round: 2, Result: map[string]any{"msgs_per_s": 100.0}},
		{Server: "x", Round: 3, Error: "x exited during the run\nlog line"},
	}
	r.Summarize()
	return r
}

func TestSummarize(t *testing.T) {
	r := sample()
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"wsmill median", r.Medians["wsmill"]["msgs_per_s"], 200},
		{"x median", r.Medians["x"]["msgs_per_s"], 100},
		{"x ratio", r.Ratios["x"]["msgs_per_s"], 0.5},
		{"x paired", r.Paired["x"]["msgs_per_s"], 2.0 / 3},
		{"nested median", r.Medians["x"]["server.rss"], 4 << 20},
		{"nested ratio", r.Ratios["x"]["server.rss"], 2},
		{"nested paired (one round)", r.Paired["x"]["server.rss"], 2},
	}
	for _, tt := range tests {
		if d := tt.got - tt.want; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: got %v; want %v", tt.name, tt.got, tt.want)
		}
	}
	if w := r.Wins["x"]["msgs_per_s"]; w != 0 {
		t.Errorf("wins: got %d; want 0 (a tie is no win)", w)
	}
}

func TestMarkdown(t *testing.T) {
	md := sample().Markdown()
	for _, want := range []string{
		"# wsload compare: echo\n",
		"Started 2026-12-07T10:00:00Z on linux/amd64 (2 CPUs, go1.26). 2 round(s)",
		"Arguments: `compare -workload echo`",
		"| server | msgs/s (higher is better) | RSS (MiB) (lower is better) | notes |\n|---|---:|---:|---|\n",
		"| wsmill | 200 | 2.0 |  |\n",
		"| x | 100 (0.50×) | 4.0 (2.00×) | 1/2 rounds failed |\n",
		"- x: msgs/s 0.67× (better than wsmill in 0 of 2 rounds)\n",
		"- round 3, x: x exited during the run\n",
		"![msgs/s](compare-echo.png)\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "log line") {
		t.Error("markdown quotes more than an error's first line")
	}
}

func TestPrint(t *testing.T) {
	var b bytes.Buffer
	sample().Print(&b)
	out := b.String()
	for _, want := range []string{"echo: median over 2 round(s); (×) is the ratio to wsmill", "x       100 (0.50×)", "round 3 x: x exited during the run"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestWriteJSONRoundTrip: the JSON compare writes reads back into the
// same report (plot -report recomputes from it).
func TestWriteJSONRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := sample()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "compare-echo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Compare
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.Summarize()
	if back.Markdown() != r.Markdown() {
		t.Errorf("markdown after a JSON round trip differs:\n%s\nwant:\n%s", back.Markdown(), r.Markdown())
	}
	for _, k := range []string{`"workload": "echo"`, `"baseline": "wsmill"`, `"paired"`, `"wins"`, `"runs"`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("JSON lacks %s", k)
		}
	}
}

func TestWriteFilesPlotError(t *testing.T) {
	dir := t.TempDir()
	err := WriteFiles(dir, "x", map[string]int{"a": 1}, "# x\n", func(string) error { return errors.New("no data") })
	if err == nil || err.Error() != "plot: no data" {
		t.Fatalf("got %v; want plot: no data", err)
	}
	for _, f := range []string{"x.json", "x.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written before the plot failed: %v", f, err)
		}
	}
}

func TestResultLine(t *testing.T) {
	var b bytes.Buffer
	Result(&b, struct {
		Workload string  `json:"workload"`
		P99      float64 `json:"p99_ms"`
	}{"push", 1.5})
	if got, want := b.String(), "RESULT {\"workload\":\"push\",\"p99_ms\":1.5}\n"; got != want {
		t.Fatalf("got %q; want %q", got, want)
	}
}

func TestLookupAndSummaryLine(t *testing.T) {
	m := ToMap(struct {
		A     float64        `json:"a"`
		Inner map[string]int `json:"inner"`
		S     string         `json:"s"`
	}{2.5, map[string]int{"b": 3}, "text"})
	tests := []struct {
		key string
		v   float64
		ok  bool
	}{{"a", 2.5, true}, {"inner.b", 3, true}, {"inner.c", 0, false}, {"s", 0, false}, {"a.b", 0, false}}
	for _, tt := range tests {
		if v, ok := Lookup(m, tt.key); v != tt.v || ok != tt.ok {
			t.Errorf("Lookup(%q) = %v, %v; want %v, %v", tt.key, v, ok, tt.v, tt.ok)
		}
	}
	got := SummaryLine([]Metric{NewMetric("a", "A", "%.1f", "higher", 0), NewMetric("inner.b", "B", "%.0f", "lower", 10), NewMetric("zz", "Z", "%.0f", "lower", 0)}, m)
	if want := "A 2.5, B 30"; got != want {
		t.Errorf("SummaryLine: got %q; want %q", got, want)
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	tb := NewTable(&b)
	tb.Row("a", "1")
	tb.Row("longer", "2")
	tb.Flush()
	if got, want := b.String(), "a       1\nlonger  2\n"; got != want {
		t.Fatalf("got %q; want %q", got, want)
	}
}
