package scale

// wsload scale's files: scale.json (the whole result), scale.md (the step
// table) and scale-lag.png (the push-lag CDF of each step).

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/report"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writeScale writes DIR/scale.{json,md} and DIR/scale-lag.png.
func writeScale(r *scaleResult, dir string) error {
	lag := filepath.Join(dir, "scale-lag.png")
	if err := report.WriteFiles(dir, "scale", r, r.markdown(), func(string) error { return plotScaleLag(r, lag) }); err != nil {
		return err
	}
	fmt.Fprintf(cli.Stderr, "wrote %s/scale.json, scale.md, scale-lag.png\n", dir)
	return nil
}

func (r *scaleResult) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# wsload scale: %d connections\n\n", r.N)
	fmt.Fprintf(&b, "`%s`\n\n", r.Command)
	fmt.Fprintf(&b, "Host: %s, %s CPUs, kernel %s, %s. %d wsmill processes (`%s`, GOMAXPROCS=%d) on %s with SO_REUSEPORT; "+
		"%d client processes (one epoll loop each, GOMAXPROCS=%d) from %d source addresses; push interval %.0f ms, %.1f s measured at each step.\n\n",
		r.Host["os"], r.Host["cpus"], r.Host["kernel"], r.Host["go"], r.Servers, strings.Join(r.ServerArgs[2:], " "), r.GoMaxProcs, r.Addr,
		r.Clients, r.ClientProcs, r.Sources, r.IntervalMs, r.HoldS)
	b.WriteString("| open | connect/s | failed | per server | server RSS/conn | slab/conn | TCP buf/conn | client RSS/conn | pushes received / expected | conns missing a push | lag p50 / p99 / max (ms) | phase lag p99 / max (ms) | server CPU/push | CPU s in window: servers / clients / other | client stall max | MemAvailable | held |\n")
	b.WriteString("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, s := range r.Steps {
		held := "yes"
		if !s.Held {
			held = "**no**"
		}
		fmt.Fprintf(&b, "| %d | %.0f | %d | %d–%d | %.0f B | %.0f B | %.0f B | %.0f B | %d / %d | %d | %.2f / %.2f / %.1f | %.2f / %.1f | %.2f µs | %.1f / %.1f / %.1f | %.0f ms | %.1f GiB | %s |\n",
			s.Open, s.ConnectRate, s.Failed, s.PerServerMin, s.PerServerMax, s.ServerRSSPerConn, s.SlabPerConn, s.TCPMemPerConn,
			s.ClientRSSPerConn, s.PushesReceived, s.PushesExpected, s.Missed, s.GapP50ms, s.GapP99ms, s.GapMaxMs,
			s.PhaseP99ms, s.PhaseMaxMs, s.CPUPerPushUs, s.ServerCPU, s.ClientCPU, s.OthersCPU, s.ClientStallMaxMs,
			float64(s.Mem.MemAvailable)/(1<<30), held)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Largest N held with every push delivered: **%d**.", r.Largest)
	if r.Stopped != "" {
		fmt.Fprintf(&b, " Stopped: %s.", r.Stopped)
	}
	fmt.Fprintf(&b, " Connect rate over all steps: %.0f conns/s.\n\n", r.ConnectRate)
	b.WriteString("Lag is |gap − interval| between a connection's consecutive pushes; phase lag is how far a push " +
		"came after the connection's earliest phase (arrival − k·interval). Slab and TCP buffers count both ends of each " +
		"loopback connection. Server RSS is the growth of the sum over all server processes; client RSS is the clients' whole RSS.\n\n")
	fmt.Fprintf(&b, "TCP buffer memory limit (net.ipv4.tcp_mem, pages: min, pressure, max): %s.\n\n", r.TCPMemLimit)
	b.WriteString("\"Other\" CPU is the machine's busy time (/proc/stat) in the window less the servers' and clients': other work " +
		"on the machine, and softirq time charged to no process.\n\n")
	for _, s := range r.Steps {
		if len(s.Errors) > 0 {
			fmt.Fprintf(&b, "- step %d failures: %s\n", s.Target, topErrors(s.Errors, 6))
		}
		if len(s.SlabCaches) > 0 {
			var parts []string
			for _, c := range proc.SocketCaches {
				if v, ok := s.SlabCaches[c]; ok {
					parts = append(parts, fmt.Sprintf("%s %.0f B", c, v))
				}
			}
			fmt.Fprintf(&b, "- step %d slab per connection by cache (both ends): %s; TCP sockets added %d (2 per connection: %d)\n",
				s.Target, strings.Join(parts, ", "), s.TCPSocketsUp, 2*s.Open)
		}
		if len(s.TCPDial)+len(s.TCPHold) > 0 {
			fmt.Fprintf(&b, "- step %d kernel TCP counters (machine-wide) while dialing: %s; in the window: %s; TCP buffer pages at most %d while dialing\n",
				s.Target, counters(s.TCPDial), counters(s.TCPHold), s.TCPMemPeakPages)
		}
	}
	if len(r.Lost) > 0 {
		fmt.Fprintf(&b, "- connections the servers dropped: %s\n", topErrors(r.Lost, 6))
	}
	if len(r.Unexpected) > 0 {
		fmt.Fprintf(&b, "- unexpected frames: %s\n", topErrors(r.Unexpected, 6))
	}
	if sd := r.Shutdown; sd != nil {
		fmt.Fprintf(&b, "- shutdown: SIGTERM to the last server's exit %.2f s; the clients saw %s", sd.ServersExitS, topErrors(sd.Closes, 6))
		if sd.ServerErrors != "" {
			fmt.Fprintf(&b, "; errors: %s", strings.ReplaceAll(sd.ServerErrors, "\n", "; "))
		}
		b.WriteString("\n")
		t := sd.ServerTotals
		fmt.Fprintf(&b, "- servers' totals at exit: %d upgraded, %d rejected, %d pushes, %d pushes skipped, %d left open\n",
			t["upgraded"], t["rejected"], t["pushes"], t["pushes_skipped"], t["left_open"])
		if len(sd.ServerWarnings) > 0 {
			fmt.Fprintf(&b, "- server warnings: %s\n", topErrors(sd.ServerWarnings, 6))
		}
	}
	b.WriteString("\n![push lag CDF per step](scale-lag.png)\n")
	return b.String()
}

// plotScaleLag draws, for each step, the share of pushes whose
// |gap − interval| is at most x (log scale).
func plotScaleLag(r *scaleResult, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("wsload scale: push lag |gap − %.0f ms| per step", r.IntervalMs)
	p.X.Label.Text = "lag (ms, log scale)"
	p.Y.Label.Text = "share of pushes with at most this lag"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	i := 0
	for _, s := range r.Steps {
		h := s.gapHist
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		var pts plotter.XYs
		var cum int64
		for _, bar := range h.Distribution() {
			if bar.Count == 0 {
				continue
			}
			cum += bar.Count
			x := float64(max(bar.To, 1)) / 1000
			pts = append(pts, plotter.XY{X: x, Y: float64(cum) / float64(h.TotalCount())})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%d conns", s.Open), l)
		i++
	}
	if i == 0 {
		return nil
	}
	p.Legend.Left = false
	p.Legend.Top = false
	p.Add(plotter.NewGrid())
	return p.Save(7*vg.Inch, 4*vg.Inch, path)
}

// counters formats counter deltas sorted by name.
func counters(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
