package main

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

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

type connectionsConfig struct {
	Addr        string
	PID         int
	N           int
	Procs       int
	Src         string
	Greeting    bool
	Hold        time.Duration
	DialConc    int
	Rate        float64
	DialTimeout time.Duration
	Quiet       bool // no progress bar
}

func (c *connectionsConfig) register(fs *flag.FlagSet, target bool) {
	if target {
		fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "server host:port")
		fs.IntVar(&c.PID, "pid", 0, "server process id, for RSS/threads/fds (0: not measured)")
	}
	fs.IntVar(&c.N, "n", 1000, "connections to open")
	fs.IntVar(&c.Procs, "procs", 0, "client processes (0: one per 9,000 connections)")
	fs.StringVar(&c.Src, "src", "", "comma-separated source addresses, used round-robin (e.g. 127.0.0.2,127.0.0.3)")
	fs.BoolVar(&c.Greeting, "greeting", true, "require the \"Hi Client!\" greeting on each connection")
	fs.DurationVar(&c.Hold, "hold", 5*time.Second, "idle time after the last connection before the server is measured")
	fs.IntVar(&c.DialConc, "dial-concurrency", 64, "dials in flight per client process")
	fs.Float64Var(&c.Rate, "rate", 0, "total dial rate limit in connections/s (0: as fast as the server accepts)")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", 10*time.Second, "timeout for one connection's dial, upgrade and greeting")
}

type connectionsResult struct {
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
	Before         *proc.Stat     `json:"server_before,omitempty"`
	After          *proc.Stat     `json:"server_after,omitempty"`
	AfterClose     *proc.Stat     `json:"server_after_close,omitempty"`
	RSSPerConn     float64        `json:"rss_per_conn_bytes"`
	FDsPerConn     float64        `json:"fds_per_conn"`
	ThreadsBefore  int            `json:"threads_before"`
	ThreadsAfter   int            `json:"threads_after"`
}

// runConnections opens cfg.N connections, holds them, measures the server.
func runConnections(ctx context.Context, cfg connectionsConfig) (*connectionsResult, error) {
	if cfg.N < 1 {
		return nil, fmt.Errorf("-n must be at least 1")
	}
	src := fleet.ParseSrc(cfg.Src)
	procs := fleet.SplitProcs(cfg.N, cfg.Procs)
	res := &connectionsResult{Workload: "connections", N: cfg.N, Procs: procs, Sources: max(1, len(src))}
	if cfg.PID > 0 {
		ps, err := proc.ReadStat(cfg.PID)
		if err != nil {
			return nil, err
		}
		res.Before = &ps
	}
	spec := fleet.Spec{Mode: "connections", Addr: cfg.Addr, Src: src, Greeting: cfg.Greeting,
		DialConcurrency: cfg.DialConc, DialTimeout: cfg.DialTimeout, ReadBuf: 1024}
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

func printConnections(w io.Writer, r *connectionsResult) {
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

// connectionsWorker holds its connections, reading (and discarding) what
// the server sends so that a connection the server drops is noticed.
func connectionsWorker(ctx context.Context, spec fleet.Spec, cmds <-chan fleet.Command, emit func(fleet.Event)) error {
	var alive atomic.Int64
	var closing atomic.Bool
	var lmu sync.Mutex
	lost := map[string]int{}
	plan := fleet.DialPlan{Opts: spec.DefaultOpts, Connected: func(i int, c *wsclient.Conn) {
		alive.Add(1)
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
	emit(fleet.Event{Type: "done", Alive: n, Errors: lostCopy})
	return nil
}
