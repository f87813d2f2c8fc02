package fanout

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/workload/compare"
)

// Compared is the fan-out workload as compare runs it; its servers run in
// two modes, @broadcast and @rooms (compare.Modal).
func Compared() compare.Workload { return &compared{} }

type compared struct{ cfg Config }

func (w *compared) Register(fs *flag.FlagSet) { w.cfg.register(fs) }
func (w *compared) Needs() compare.Needs      { return compare.Needs{Broadcast: true} }
func (w *compared) Server(iv time.Duration, given bool) (time.Duration, []string) {
	if !given {
		iv = time.Hour // time pushes out of the way of the broadcasts
	}
	return iv, []string{"-fanout-interval", w.cfg.Interval.String()}
}
func (w *compared) Metrics() []report.Metric {
	return []report.Metric{
		report.NewMetric("last_p50_ms", "to last p50 (ms)", "%.2f", "lower", 0),
		report.NewMetric("last_p99_ms", "to last p99 (ms)", "%.2f", "lower", 0),
		report.NewMetric("p50_ms", "delivery p50 (ms)", "%.2f", "lower", 0),
		report.NewMetric("p99_ms", "delivery p99 (ms)", "%.2f", "lower", 0),
		report.NewMetric("max_ms", "max (ms)", "%.2f", "lower", 0), // over pairs = over broadcasts' last
		report.NewMetric("missing", "missing", "%.0f", "lower", 0),
		report.NewMetric("broadcasts", "broadcasts", "%.0f", "higher", 0),
		report.NewMetric("read_last_p50_ms", "to last read p50 (ms)", "%.2f", "lower", 0),
		report.NewMetric("server_cpu_ms_per_broadcast", "server CPU/broadcast (ms)", "%.1f", "lower", 0),
		report.NewMetric("rss_connected", "RSS connected (MiB)", "%.1f", "lower", 1.0/(1<<20)),
	}
}
func (w *compared) Run(ctx context.Context, t compare.Target) (any, error) {
	c := w.cfg
	c.Addr, c.PID, c.Quiet = t.Addr, t.PID, true
	r, err := Run(ctx, c)
	if r == nil {
		return nil, err
	}
	r.Server = t.Server
	return r, err
}

func (w *compared) Modes() []string { return []string{fanoutBroadcast, fanoutRooms} }

// ModeFlags: @rooms (which needs -rooms ≥ 1) and, with -rooms ≥ 1, no
// mode, publish to rooms (-fanout-rooms); @broadcast broadcasts.
func (w *compared) ModeFlags(label, mode string) ([]string, error) {
	switch mode {
	case fanoutRooms:
		if w.cfg.Rooms < 1 {
			return nil, fmt.Errorf("server %s publishes to rooms: give -rooms ≥ 1 (the clients' rooms)", label)
		}
		return []string{"-fanout-rooms"}, nil
	case fanoutBroadcast:
		return nil, nil
	case "":
		if w.cfg.Rooms >= 1 {
			return []string{"-fanout-rooms"}, nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("server %s: unknown fan-out mode %s", label, mode)
}

const (
	fanoutBroadcast = "broadcast" // the server broadcasts to every connection
	fanoutRooms     = "rooms"     // the server publishes to every room (-fanout-rooms)
)
