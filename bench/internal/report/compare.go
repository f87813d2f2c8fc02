package report

// The comparison report: one workload, several servers over rounds; medians,
// ratios to a baseline and paired ratios; its JSON, Markdown and PNG.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/stats"
)

// Metric names a metric of a workload's RESULT and how to show it.
type Metric struct {
	Key    string  `json:"key"`
	Label  string  `json:"label"`
	Format string  `json:"format"`
	Better string  `json:"better"`          // "higher" or "lower"
	Scale  float64 `json:"scale,omitempty"` // display multiplier (0: 1)
}

// show formats a value of the metric for tables.
func (m Metric) Show(v float64) string {
	if m.Scale != 0 {
		v *= m.Scale
	}
	return fmt.Sprintf(m.Format, v)
}

// Run is one server in one round.
type Run struct {
	Server  string         `json:"server"`
	Round   int            `json:"round"`
	Result  map[string]any `json:"result,omitempty"`
	Error   string         `json:"error,omitempty"`
	Skipped string         `json:"skipped,omitempty"`
}

// Compare is what compare writes to DIR/compare-WORKLOAD.json.
type Compare struct {
	Workload string                        `json:"workload"`
	Rounds   int                           `json:"rounds"`
	Servers  []string                      `json:"servers"`
	Baseline string                        `json:"baseline,omitempty"` // ratios are to its medians ("" in old files: wsmill)
	Args     []string                      `json:"args"`
	Started  time.Time                     `json:"started"`
	Host     map[string]string             `json:"host"`
	Metrics  []Metric                      `json:"metrics"`
	Medians  map[string]map[string]float64 `json:"medians"`
	Ratios   map[string]map[string]float64 `json:"ratios"` // server median / baseline median
	// Paired ratios: in each round, the server's figure over the
	// baseline's of the same round; the median of those, and in how many
	// rounds the server did better than the baseline. Slow drifts of a
	// shared machine (another tenant for a minute) move both figures of a
	// round together, so these are steadier than the ratio of medians.
	Paired map[string]map[string]float64 `json:"paired,omitempty"`
	Wins   map[string]map[string]int     `json:"wins,omitempty"`
	Runs   []Run                         `json:"runs"`
}

// toMap flattens a result struct to metric name → value via its JSON form;
// nested objects become "outer.inner".
func ToMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// Lookup finds key ("outer.inner" for nested objects) in a ToMap result.
func Lookup(m map[string]any, key string) (float64, bool) {
	var cur any = m
	for _, part := range strings.Split(key, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return 0, false
		}
		cur = mm[part]
	}
	f, ok := cur.(float64)
	return f, ok
}

// summarize fills the medians over the successful rounds and the ratios to
// the baseline.
func (r *Compare) Summarize() {
	r.Medians = map[string]map[string]float64{}
	r.Ratios = map[string]map[string]float64{}
	for _, s := range r.Servers {
		med := map[string]float64{}
		for _, m := range r.Metrics {
			var vals []float64
			for _, run := range r.Runs {
				if run.Server != s || run.Result == nil || run.Error != "" {
					continue
				}
				if v, ok := Lookup(run.Result, m.Key); ok {
					vals = append(vals, v)
				}
			}
			if len(vals) > 0 {
				med[m.Key] = stats.Median(vals)
			}
		}
		if len(med) > 0 {
			r.Medians[s] = med
		}
	}
	base, ok := r.Medians[r.BaselineName()]
	if !ok {
		return
	}
	for s, med := range r.Medians {
		rat := map[string]float64{}
		for k, v := range med {
			if b := base[k]; b != 0 {
				rat[k] = v / b
			}
		}
		r.Ratios[s] = rat
	}
	r.pair()
}

// pair fills Paired and Wins from the rounds where both the server and the
// baseline have the metric.
func (r *Compare) pair() {
	r.Paired = map[string]map[string]float64{}
	r.Wins = map[string]map[string]int{}
	base := map[int]map[string]any{}
	for _, run := range r.Runs {
		if run.Server == r.BaselineName() && run.Result != nil && run.Error == "" {
			base[run.Round] = run.Result
		}
	}
	for _, s := range r.Servers {
		if s == r.BaselineName() {
			continue
		}
		paired, wins := map[string]float64{}, map[string]int{}
		for _, m := range r.Metrics {
			var rounds []stats.Round
			for _, run := range r.Runs {
				if run.Server != s || run.Result == nil || run.Error != "" || base[run.Round] == nil {
					continue
				}
				v, ok1 := Lookup(run.Result, m.Key)
				b, ok2 := Lookup(base[run.Round], m.Key)
				if ok1 && ok2 {
					rounds = append(rounds, stats.Round{Server: v, Base: b})
				}
			}
			if ratio, w, ok := stats.Paired(rounds, m.Better == "higher"); ok {
				paired[m.Key], wins[m.Key] = ratio, w
			}
		}
		r.Paired[s], r.Wins[s] = paired, wins
	}
}

// pairedLines describes, per server, the paired ratios of the first metric
// and of the per-CPU one (the two that decide most comparisons).
func (r *Compare) PairedLines() []string {
	var keys []Metric
	for i, m := range r.Metrics {
		if i == 0 || strings.Contains(m.Key, "per_server_cpu") {
			keys = append(keys, m)
		}
	}
	var lines []string
	for _, s := range r.Servers {
		p, ok := r.Paired[s]
		if !ok || len(p) == 0 {
			continue
		}
		n := 0 // the server's successful rounds
		for _, run := range r.Runs {
			if run.Server == s && run.Result != nil && run.Error == "" {
				n++
			}
		}
		var parts []string
		for _, m := range keys {
			v, ok := p[m.Key]
			if !ok {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %.2f× (better than %s in %d of %d rounds)", m.Label, v, r.BaselineName(), r.Wins[s][m.Key], n))
		}
		if len(parts) > 0 {
			lines = append(lines, s+": "+strings.Join(parts, "; "))
		}
	}
	return lines
}

// baseline is the server the ratios are to: wsmill in files written
// before -baseline existed.
func (r *Compare) BaselineName() string {
	if r.Baseline == "" {
		return "wsmill"
	}
	return r.Baseline
}

// cell formats a median and its ratio to the baseline.
func (r *Compare) cell(server string, m Metric) string {
	v, ok := r.Medians[server][m.Key]
	if !ok {
		return "–"
	}
	s := m.Show(v)
	if rat, ok := r.Ratios[server][m.Key]; ok && server != r.BaselineName() {
		s += fmt.Sprintf(" (%.2f×)", rat)
	}
	return s
}

// notes lists failed and skipped runs per server.
func (r *Compare) notes(server string) string {
	var failed, skipped int
	for _, run := range r.Runs {
		if run.Server != server {
			continue
		}
		if run.Error != "" {
			failed++
		}
		if run.Skipped != "" {
			skipped++
		}
	}
	var parts []string
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d/%d rounds failed", failed, r.Rounds))
	}
	if skipped > 0 {
		parts = append(parts, "skipped")
	}
	return strings.Join(parts, ", ")
}

// Print writes the comparison as an aligned table, then the paired ratios
// and the failed runs.
func (r *Compare) Print(w io.Writer) {
	fmt.Fprintf(w, "\n%s: median over %d round(s); (×) is the ratio to %s\n", r.Workload, r.Rounds, r.BaselineName())
	t := NewTable(w)
	head := []string{"server"}
	for _, m := range r.Metrics {
		head = append(head, m.Label)
	}
	t.Row(append(head, "notes")...)
	for _, s := range r.Servers {
		row := []string{s}
		for _, m := range r.Metrics {
			row = append(row, r.cell(s, m))
		}
		t.Row(append(row, r.notes(s))...)
	}
	t.Flush()
	if lines := r.PairedLines(); len(lines) > 0 {
		fmt.Fprintf(w, "paired: median over rounds of (server / %s in the same round)\n", r.BaselineName())
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	for _, run := range r.Runs {
		if run.Error != "" {
			fmt.Fprintf(w, "round %d %s: %s\n", run.Round, run.Server, FirstLine(run.Error))
		}
	}
}

// Markdown renders the comparison as compare-WORKLOAD.md.
func (r *Compare) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# wsload compare: %s\n\n", r.Workload)
	fmt.Fprintf(&b, "Started %s on %s (%s CPUs, %s). %d round(s); each round runs every server once in the order %s. Cells are medians over the rounds; (×) is the ratio to %s.\n\n",
		r.Started.Format(time.RFC3339), r.Host["os"], r.Host["cpus"], r.Host["go"], r.Rounds, strings.Join(r.Servers, ", "), r.BaselineName())
	fmt.Fprintf(&b, "Arguments: `compare %s`\n\n", strings.Join(r.Args, " "))
	b.WriteString("| server |")
	for _, m := range r.Metrics {
		fmt.Fprintf(&b, " %s (%s is better) |", m.Label, m.Better)
	}
	b.WriteString(" notes |\n|---|")
	for range r.Metrics {
		b.WriteString("---:|")
	}
	b.WriteString("---|\n")
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "| %s |", s)
		for _, m := range r.Metrics {
			fmt.Fprintf(&b, " %s |", r.cell(s, m))
		}
		fmt.Fprintf(&b, " %s |\n", r.notes(s))
	}
	if lines := r.PairedLines(); len(lines) > 0 {
		fmt.Fprintf(&b, "\nPaired ratios: the median over rounds of the server's figure over %s's in the same round.\n\n", r.BaselineName())
		for _, l := range lines {
			b.WriteString("- " + l + "\n")
		}
	}
	var errs []string
	for _, run := range r.Runs {
		if run.Error != "" {
			errs = append(errs, fmt.Sprintf("- round %d, %s: %s", run.Round, run.Server, FirstLine(run.Error)))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nFailed runs:\n\n" + strings.Join(errs, "\n") + "\n")
	}
	fmt.Fprintf(&b, "\n![%s](compare-%s.png)\n", r.Metrics[0].Label, r.Workload)
	return b.String()
}

// writeCompare writes DIR/compare-WORKLOAD.{json,md,png}.
func (r *Compare) Write(dir string) error {
	base := "compare-" + r.Workload
	if err := WriteFiles(dir, base, r, r.Markdown(), func(path string) error { return PlotCompare(r, path) }); err != nil {
		return err
	}
	fmt.Fprintf(cli.Stderr, "wrote %[1]s.json, %[1]s.md, %[1]s.png\n", filepath.Join(dir, base))
	return nil
}

// SummaryLine shows the first four metrics of one run's result, for the
// progress line after each run.
func SummaryLine(metrics []Metric, m map[string]any) string {
	var parts []string
	for _, d := range metrics[:min(4, len(metrics))] {
		if v, ok := Lookup(m, d.Key); ok {
			parts = append(parts, d.Label+" "+d.Show(v))
		}
	}
	return strings.Join(parts, ", ")
}

// HostInfo names the machine a result was measured on: Go, CPUs, OS, kernel.
func HostInfo() map[string]string {
	h := map[string]string{"go": runtime.Version(), "cpus": strconv.Itoa(runtime.NumCPU()), "os": runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h["kernel"] = strings.TrimSpace(string(b))
	}
	return h
}

// FirstLine cuts s at its first newline, for one-line error summaries.
func FirstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// NewMetric is a Metric from its fields in order, for the workloads'
// metric tables (one line each).
func NewMetric(key, label, format, better string, scale float64) Metric {
	return Metric{Key: key, Label: label, Format: format, Better: better, Scale: scale}
}
