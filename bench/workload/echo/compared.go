package echo

import (
	"context"
	"flag"
	"time"

	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/workload/compare"
)

// Compared is the echo workload as compare runs it.
func Compared() compare.Workload { return &compared{} }

type compared struct{ cfg Config }

func (w *compared) Register(fs *flag.FlagSet) { w.cfg.register(fs) }
func (w *compared) Needs() compare.Needs      { return compare.Needs{} }
func (w *compared) Server(iv time.Duration, _ bool) (time.Duration, []string) {
	return iv, nil
}
func (w *compared) Metrics() []report.Metric {
	return []report.Metric{
		report.NewMetric("msgs_per_s", "msgs/s", "%.0f", "higher", 0),
		report.NewMetric("mb_per_s", "MB/s", "%.2f", "higher", 0),
		report.NewMetric("p50_us", "p50 (µs)", "%.0f", "lower", 0),
		report.NewMetric("p99_us", "p99 (µs)", "%.0f", "lower", 0),
		report.NewMetric("p999_us", "p99.9 (µs)", "%.0f", "lower", 0),
		report.NewMetric("server_cpu_s", "server CPU (s)", "%.2f", "lower", 0),
		report.NewMetric("msgs_per_server_cpu_s", "msgs/server CPU-s", "%.0f", "higher", 0),
		report.NewMetric("client_cpu_s", "client CPU (s)", "%.2f", "lower", 0),
		report.NewMetric("mismatch", "mismatches", "%.0f", "lower", 0),
		report.NewMetric("wire_out_per_msg", "wire out (B/msg)", "%.0f", "lower", 0),
		report.NewMetric("wire_in_per_msg", "wire in (B/msg)", "%.0f", "lower", 0),
		report.NewMetric("deflate_conns", "deflate conns", "%.0f", "higher", 0),
	}
}
func (w *compared) Run(ctx context.Context, t compare.Target) (any, error) {
	c := w.cfg
	c.Addr, c.PID, c.Quiet = t.Addr, t.PID, true
	c.Greeting = c.Greeting && t.Greeting
	r, err := Run(ctx, c)
	if r == nil {
		return nil, err
	}
	r.Server = t.Server
	return r, err
}
