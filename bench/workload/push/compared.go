package push

import (
	"context"
	"flag"
	"time"

	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/workload/compare"
)

// Compared is the push workload as compare runs it.
func Compared() compare.Workload { return &compared{} }

type compared struct{ cfg Config }

func (w *compared) Register(fs *flag.FlagSet) { w.cfg.register(fs) }
func (w *compared) Needs() compare.Needs      { return compare.Needs{Pushes: true} }
func (w *compared) Server(time.Duration, bool) (time.Duration, []string) {
	return w.cfg.Interval, nil // -interval is the servers' push interval
}
func (w *compared) Metrics() []report.Metric {
	return []report.Metric{
		report.NewMetric("push_p99_ms", "push p99 (ms)", "%.3f", "lower", 0),
		report.NewMetric("push_p50_ms", "push p50 (ms)", "%.3f", "lower", 0),
		report.NewMetric("push_max_ms", "push max (ms)", "%.3f", "lower", 0),
		report.NewMetric("complete_pct", "every push (%)", "%.2f", "higher", 0),
		report.NewMetric("slow_closed", "slow closed", "%.0f", "higher", 0),
		report.NewMetric("rss_connected", "RSS connected (MiB)", "%.1f", "lower", 1.0/(1<<20)),
		report.NewMetric("rss_after", "RSS after (MiB)", "%.1f", "lower", 1.0/(1<<20)),
		report.NewMetric("server_cpu_s", "server CPU (s)", "%.2f", "lower", 0),
	}
}
func (w *compared) Run(ctx context.Context, t compare.Target) (any, error) {
	c := w.cfg
	c.Addr, c.PID = t.Addr, t.PID
	r, err := Run(ctx, c)
	if r == nil {
		return nil, err
	}
	r.Server = t.Server
	return r, err
}
