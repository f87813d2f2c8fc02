package connections

import (
	"context"
	"flag"
	"time"

	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/workload/compare"
)

// Compared is the connections workload as compare runs it.
func Compared() compare.Workload { return &compared{} }

type compared struct{ cfg Config }

func (w *compared) Register(fs *flag.FlagSet) { w.cfg.register(fs) }
func (w *compared) Needs() compare.Needs      { return compare.Needs{} }
func (w *compared) Server(iv time.Duration, _ bool) (time.Duration, []string) {
	return iv, nil
}
func (w *compared) Metrics() []report.Metric {
	return []report.Metric{
		report.NewMetric("rss_per_conn_bytes", "RSS/conn (B)", "%.0f", "lower", 0),
		report.NewMetric("fds_per_conn", "fds/conn", "%.3f", "lower", 0),
		report.NewMetric("threads_after", "threads", "%.0f", "lower", 0),
		report.NewMetric("dial_rate", "dial rate (conn/s)", "%.0f", "higher", 0),
		report.NewMetric("server_after.rss_bytes", "RSS after (MiB)", "%.1f", "lower", 1.0/(1<<20)),
		report.NewMetric("connected", "connected", "%.0f", "higher", 0),
		report.NewMetric("deflate_conns", "deflate conns", "%.0f", "higher", 0),
		report.NewMetric("failed", "failed", "%.0f", "lower", 0),
		report.NewMetric("lost_during_hold", "lost", "%.0f", "lower", 0),
	}
}
func (w *compared) Run(ctx context.Context, t compare.Target) (any, error) {
	c := w.cfg
	c.Addr, c.PID = t.Addr, t.PID
	c.Greeting = c.Greeting && t.Greeting
	r, err := Run(ctx, c)
	if r == nil {
		return nil, err
	}
	r.Server = t.Server
	return r, err
}
