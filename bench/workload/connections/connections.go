package connections

// connections: how much memory, how many file descriptors and threads the
// server spends per idle connection, and how fast it accepts them.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

// Config is one connections run.
type Config struct {
	cli.Target
	fleet.Dialing
	N        int
	Greeting bool
	Hold     time.Duration
	Deflate  bool // offer permessage-deflate on every connection
	Quiet    bool // no progress bar
}

func (c *Config) register(fs *flag.FlagSet) {
	fs.IntVar(&c.N, "n", 1000, "connections to open")
	c.Dialing.Register(fs, 0, "0: one per 9,000 connections", true)
	fs.BoolVar(&c.Greeting, "greeting", true, "require the \"Hi Client!\" greeting on each connection")
	fs.DurationVar(&c.Hold, "hold", 5*time.Second, "idle time after the last connection before the server is measured")
	fs.BoolVar(&c.Deflate, "deflate", false, "offer permessage-deflate on every connection: the memory of idle connections that negotiated it (deflate_conns says how many did)")
}

// Command runs "wsload connections".
func Command(ctx context.Context, args []string) error {
	var cfg Config
	fs := flag.NewFlagSet("connections", flag.ContinueOnError)
	cfg.Target.Register(fs, "RSS/threads/fds")
	cfg.register(fs)
	_, err := report.Command(ctx, fs, args, func(ctx context.Context) (*Result, error) { return Run(ctx, cfg) }, Print)
	return err
}

// Result is the RESULT of a connections run.
type Result struct {
	Workload       string         `json:"workload"`
	Server         string         `json:"server,omitempty"`
	N              int            `json:"n"`
	Procs          int            `json:"procs"`
	Sources        int            `json:"sources"`
	Connected      int            `json:"connected"`
	Failed         int            `json:"failed"`
	Errors         map[string]int `json:"errors,omitempty"`
	DialSeconds    float64        `json:"dial_s"`
	DialRate       float64        `json:"dial_rate"`
	LostDuringHold int            `json:"lost_during_hold"`
	DeflateConns   int            `json:"deflate_conns"` // connections that negotiated permessage-deflate (-deflate)
	Before         *proc.Stat     `json:"server_before,omitempty"`
	After          *proc.Stat     `json:"server_after,omitempty"`
	AfterClose     *proc.Stat     `json:"server_after_close,omitempty"`
	RSSPerConn     float64        `json:"rss_per_conn_bytes"`
	FDsPerConn     float64        `json:"fds_per_conn"`
	ThreadsBefore  int            `json:"threads_before"`
	ThreadsAfter   int            `json:"threads_after"`
}

// Run opens cfg.N connections, holds them, measures the server.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.N < 1 {
		return nil, fmt.Errorf("-n must be at least 1")
	}
	src := fleet.ParseSrc(cfg.Src)
	procs := fleet.SplitProcs(cfg.N, cfg.Procs)
	res := &Result{Workload: "connections", N: cfg.N, Procs: procs, Sources: max(1, len(src))}
	if cfg.PID > 0 {
		ps, err := proc.ReadStat(cfg.PID)
		if err != nil {
			return nil, err
		}
		res.Before = &ps
	}
	spec := cfg.Dialing.Spec("connections", cfg.Addr)
	spec.Greeting, spec.ReadBuf, spec.Deflate = cfg.Greeting, 1024, cfg.Deflate
	p, err := fleet.StartPool(ctx, spec, fleet.PoolOptions{Total: cfg.N, Procs: procs, Rate: cfg.Rate})
	if err != nil {
		return nil, err
	}
	defer p.Shutdown(3 * time.Second)
	sum, err := p.WaitReady(ctx, fleet.DialBudget(cfg.N, cfg.DialTimeout), !cfg.Quiet)
	if err != nil {
		return nil, err
	}
	res.Connected, res.Failed, res.Errors = sum.OK, sum.Fail, sum.Errors
	res.DialSeconds = sum.End.Sub(sum.Start).Seconds()
	res.DialRate = sum.Rate()
	if res.Connected == 0 {
		return res, fmt.Errorf("no connection could be opened: %v", res.Errors)
	}
	select {
	case <-time.After(cfg.Hold):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if cfg.PID > 0 {
		ps, err := proc.ReadStat(cfg.PID)
		if err != nil {
			return nil, err
		}
		res.After = &ps
	}
	done, err := p.CloseAll(30 * time.Second)
	if err != nil {
		return nil, err
	}
	alive := 0
	for _, e := range done {
		alive += e.Alive
		if len(e.Part) > 0 {
			d, err := fleet.DecodePart[donePart](e)
			if err != nil {
				return nil, err
			}
			res.DeflateConns += d.Deflate
		}
		for k, v := range e.Errors {
			res.Errors["lost: "+k] += v
		}
	}
	res.LostDuringHold = res.Connected - alive
	if res.Before != nil && res.After != nil {
		res.ThreadsBefore, res.ThreadsAfter = res.Before.Threads, res.After.Threads
		if res.Connected > 0 {
			res.RSSPerConn = float64(res.After.RSS-res.Before.RSS) / float64(res.Connected)
			res.FDsPerConn = float64(res.After.FDs-res.Before.FDs) / float64(res.Connected)
		}
		// How much the server gives back once the clients are gone.
		time.Sleep(time.Second)
		if ps, err := proc.ReadStat(cfg.PID); err == nil {
			res.AfterClose = &ps
		}
	}
	return res, nil
}

// Print writes r as a table.
func Print(w io.Writer, r *Result) {
	t := report.NewTable(w)
	t.Row("connections requested", strconv.Itoa(r.N))
	t.Row("client processes / source addresses", fmt.Sprintf("%d / %d", r.Procs, r.Sources))
	t.Row("connected / failed", fmt.Sprintf("%d / %d", r.Connected, r.Failed))
	for k, v := range r.Errors {
		t.Row("  error", fmt.Sprintf("%d × %s", v, k))
	}
	t.Row("dial time / rate", fmt.Sprintf("%.2f s / %.0f conns/s", r.DialSeconds, r.DialRate))
	t.Row("lost during hold", strconv.Itoa(r.LostDuringHold))
	if r.Before != nil && r.After != nil {
		t.Row("server RSS before / after", fmt.Sprintf("%s / %s", proc.MiB(r.Before.RSS), proc.MiB(r.After.RSS)))
		t.Row("server RSS per connection", fmt.Sprintf("%.0f bytes", r.RSSPerConn))
		t.Row("server fds before / after", fmt.Sprintf("%d / %d (%.3f per connection)", r.Before.FDs, r.After.FDs, r.FDsPerConn))
		t.Row("server threads before / after", fmt.Sprintf("%d / %d", r.ThreadsBefore, r.ThreadsAfter))
		if r.AfterClose != nil {
			t.Row("server after close (1 s)", fmt.Sprintf("RSS %s, fds %d, threads %d", proc.MiB(r.AfterClose.RSS), r.AfterClose.FDs, r.AfterClose.Threads))
		}
	} else {
		t.Row("server", "not measured (no -pid)")
	}
	t.Flush()
}

// Worker holds its connections, reading (and discarding) what
// the server sends so that a connection the server drops is noticed.
func Worker(ctx context.Context, spec fleet.Spec, cmds <-chan fleet.Command, emit func(fleet.Event)) error {
	var alive, deflated atomic.Int64
	var closing atomic.Bool
	var lmu sync.Mutex
	lost := map[string]int{}
	plan := fleet.DialPlan{Opts: spec.DefaultOpts, Connected: func(i int, c *wsclient.Conn) {
		alive.Add(1)
		if c.Deflate() {
			deflated.Add(1)
		}
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					if !closing.Load() {
						alive.Add(-1)
						lmu.Lock()
						lost[wsclient.ErrClass(err)]++
						lmu.Unlock()
					}
					return
				}
			}
		}()
	}}
	conns := fleet.DialAll(ctx, spec, plan, emit)
	fleet.WaitCmd(ctx, cmds, "close")
	closing.Store(true)
	n := int(alive.Load())
	lmu.Lock()
	lostCopy := make(map[string]int, len(lost))
	for k, v := range lost {
		lostCopy[k] = v
	}
	lmu.Unlock()
	fleet.CloseConns(conns)
	ev := fleet.ResultEvent(donePart{Deflate: int(deflated.Load())})
	ev.Type, ev.Alive, ev.Errors = "done", n, lostCopy
	emit(ev)
	return nil
}

// donePart is what a worker adds to its "done" event.
type donePart struct {
	Deflate int `json:"deflate"` // its connections that negotiated permessage-deflate
}
