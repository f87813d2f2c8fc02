package fleet

// Spreading connections over worker processes.
//
// One process may hold fewer than 20,000 open files, so a run with 19,000
// connections (plus the server's own) needs the connections split over
// several client processes. The parent re-executes its own binary with the
// hidden subcommand "__worker"; the worker reads a JSON workerSpec line and
// then command lines on stdin, and writes event lines (JSON) on stdout.
// When stdin closes (the parent exited or gave up) the worker closes every
// connection and exits; it also gets SIGKILL if the parent dies
// (Pdeathsig) and lives in its own process group so that Ctrl-C reaches
// only the parent, which then shuts the workers down in order.
//
// The same worker code also runs in-process (goroutines and channels
// instead of pipes) when a workload needs only one process.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

// workerSpec is everything a worker needs to open and drive its share.
type Spec struct {
	Mode            string        `json:"mode"` // connections, echo, push, fanout, soak
	Index           int           `json:"index"`
	Addr            string        `json:"addr"`
	N               int           `json:"n"`      // connections in this worker
	Offset          int           `json:"offset"` // global index of its first connection
	Src             []string      `json:"src,omitempty"`
	Greeting        bool          `json:"greeting"`
	DialConcurrency int           `json:"dial_concurrency"`
	Rate            float64       `json:"rate"` // this worker's dials per second, 0 = as fast as possible
	DialTimeout     time.Duration `json:"dial_timeout"`
	ReadBuf         int           `json:"read_buf"`
	Stamps          bool          `json:"stamps,omitempty"` // kernel receive timestamps (stamp.go)

	// echo
	Size int  `json:"size,omitempty"`
	K    int  `json:"k,omitempty"`
	Text bool `json:"text,omitempty"`

	// Deflate offers permessage-deflate on every connection (any workload);
	// Payload is the echo's message kind ("", "seq" or "json").
	Deflate bool   `json:"deflate,omitempty"`
	Payload string `json:"payload,omitempty"`

	// push
	Interval  time.Duration `json:"interval,omitempty"`
	SlowPct   float64       `json:"slow_pct,omitempty"`
	SlowBuf   int           `json:"slow_buf,omitempty"`
	SlowEvery time.Duration `json:"slow_every,omitempty"`
	SlowSize  int           `json:"slow_size,omitempty"`

	// fanout (and Interval)
	Grace time.Duration `json:"grace,omitempty"`
	Rooms int           `json:"rooms,omitempty"` // > 0: connection Offset+i upgrades at /ws?room=r((Offset+i)%Rooms)
	Chat  string        `json:"chat,omitempty"`  // non-empty: connection Offset+i upgrades at /chat?room=Chat&name=s(Offset+i)

	// Params is the workload's own part of the spec (soak's), as JSON:
	// the workload encodes and decodes it (DecodeParams).
	Params json.RawMessage `json:"params,omitempty"`
}

// command goes from the parent to a worker.
type Command struct {
	Cmd      string        `json:"cmd"` // "start", "close"
	Warmup   time.Duration `json:"warmup,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	At       int64         `json:"at,omitempty"` // fanout: the window's start, unix ns
}

// event goes from a worker to the parent.
type Event struct {
	Type      string          `json:"type"` // progress, ready, tick, result, done, fatal (and exit, made by the parent)
	Worker    int             `json:"worker"`
	OK        int             `json:"ok,omitempty"`
	Fail      int             `json:"fail,omitempty"`
	Errors    map[string]int  `json:"errors,omitempty"`
	DialStart int64           `json:"dial_start,omitempty"` // unix ns
	DialEnd   int64           `json:"dial_end,omitempty"`   // unix ns
	Alive     int             `json:"alive,omitempty"`
	Part      json.RawMessage `json:"part,omitempty"` // a "result": the workload's own figures (resultEvent, decodePart)
	Open      []int           `json:"open,omitempty"` // soak ticks: connections open per class
	Err       string          `json:"err,omitempty"`
}

// worker is the parent's handle on one worker, in-process or child.
type Worker struct {
	idx    int
	send   func(Command) error
	Events chan Event // closed when the worker has ended
	stop   func()     // ask it to end now (close stdin / cancel)
	kill   func()     // end it by force
	Pid    int        // 0 when in-process
}

// startInProc runs a worker as goroutines of this process.
func startInProc(ctx context.Context, spec Spec) *Worker {
	ctx, cancel := context.WithCancel(ctx)
	cmds := make(chan Command, 8)
	w := &Worker{idx: spec.Index, Events: make(chan Event, 256), stop: cancel, kill: cancel}
	var closed atomic.Bool
	w.send = func(c Command) error {
		if closed.Load() {
			return errors.New("worker has ended")
		}
		select {
		case cmds <- c:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("worker does not take commands")
		}
	}
	go func() {
		defer cancel()
		emit := func(e Event) {
			e.Worker = spec.Index
			w.Events <- e
		}
		if err := runWorker(ctx, spec, cmds, emit); err != nil {
			emit(Event{Type: "fatal", Err: err.Error()})
		}
		closed.Store(true)
		close(w.Events)
	}()
	return w
}

// startChild runs a worker as a child process of this binary.
func startChild(spec Spec) (*Worker, error) {
	cmd, stdin, stdout, err := StartSelf("__worker", nil)
	if err != nil {
		return nil, err
	}
	w := &Worker{idx: spec.Index, Events: make(chan Event, 256), Pid: cmd.Process.Pid}
	var mu sync.Mutex
	enc := json.NewEncoder(stdin)
	w.send = func(c Command) error {
		mu.Lock()
		defer mu.Unlock()
		return enc.Encode(c)
	}
	var stopOnce sync.Once
	w.stop = func() { stopOnce.Do(func() { stdin.Close() }) }
	w.kill = func() { cmd.Process.Kill() }
	if err := enc.Encode(spec); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("send spec to worker: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var e Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				w.Events <- Event{Type: "fatal", Worker: spec.Index, Err: fmt.Sprintf("bad line from worker: %v: %q", err, wsclient.Truncate(sc.Text(), 80))}
				continue
			}
			e.Worker = spec.Index
			w.Events <- e
		}
		if err := cmd.Wait(); err != nil {
			w.Events <- Event{Type: "fatal", Worker: spec.Index, Err: fmt.Sprintf("worker process %d: %v", w.Pid, err)}
		}
		close(w.Events)
	}()
	return w, nil
}

// workerMain is the hidden "__worker" subcommand: the child side of startChild.
func Main() error {
	// Ctrl-C is for the parent, which shuts workers down through stdin.
	IgnoreInterrupts()
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("worker: read spec: %w", err)
	}
	var spec Spec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("worker: bad spec: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmds := make(chan Command, 8)
	go func() {
		defer cancel() // stdin closed: the parent is gone or wants us gone
		dec := json.NewDecoder(in)
		for {
			var c Command
			if err := dec.Decode(&c); err != nil {
				return
			}
			select {
			case cmds <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		e.Worker = spec.Index
		enc.Encode(e)
		out.Flush()
	}
	if err := runWorker(ctx, spec, cmds, emit); err != nil {
		emit(Event{Type: "fatal", Err: err.Error()})
		return err
	}
	return nil
}

// pool is a set of workers that together hold one workload's connections.
type Pool struct {
	Workers []*Worker
	Events  chan Event // merged; an "exit" event marks each worker's end
	Total   int
	Alive   int // workers that have not exited
}

// poolOptions say how to split a workload.
type PoolOptions struct {
	Total  int     // connections over all workers
	Procs  int     // worker count
	InProc bool    // run the (single) worker in this process
	Rate   float64 // total dial rate, 0 = unlimited
}

// startPool splits opt.Total connections over opt.Procs workers: worker i
// gets a contiguous range of global indexes, so the source address of
// connection g is src[g % len(src)] whichever worker opens it.
func StartPool(ctx context.Context, base Spec, opt PoolOptions) (*Pool, error) {
	if opt.Procs < 1 {
		opt.Procs = 1
	}
	if opt.Procs > opt.Total && opt.Total > 0 {
		opt.Procs = opt.Total
	}
	per := (opt.Total + opt.Procs - 1) / opt.Procs
	if per > MaxPerProc {
		return nil, fmt.Errorf("%d connections over %d processes is %d per process; a process may hold at most %d (open-file limit): use -procs %d or more",
			opt.Total, opt.Procs, per, MaxPerProc, (opt.Total+MaxPerProc-1)/MaxPerProc)
	}
	p := &Pool{Events: make(chan Event, 1024), Total: opt.Total}
	off := 0
	for i := 0; i < opt.Procs; i++ {
		spec := base
		spec.Index = i
		spec.N = opt.Total / opt.Procs
		if i < opt.Total%opt.Procs {
			spec.N++
		}
		spec.Offset = off
		off += spec.N
		if opt.Rate > 0 && opt.Total > 0 {
			spec.Rate = opt.Rate * float64(spec.N) / float64(opt.Total)
		}
		var w *Worker
		if opt.InProc && opt.Procs == 1 {
			w = startInProc(ctx, spec)
		} else {
			var err error
			if w, err = startChild(spec); err != nil {
				p.Shutdown(2 * time.Second)
				return nil, err
			}
		}
		p.Workers = append(p.Workers, w)
		p.Alive++
		go func(w *Worker) {
			for e := range w.Events {
				p.Events <- e
			}
			p.Events <- Event{Type: "exit", Worker: w.idx}
		}(w)
	}
	return p, nil
}

// maxPerProc keeps each worker under the 20,000 open-file limit with room
// for the binary's own files.
const MaxPerProc = 18900

func (p *Pool) Broadcast(c Command) error {
	var errs []error
	for _, w := range p.Workers {
		if err := w.send(c); err != nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", w.idx, err))
		}
	}
	return errors.Join(errs...)
}

// dialSummary is the outcome of the dialing phase over all workers.
type DialSummary struct {
	OK, Fail   int
	Errors     map[string]int
	Start, End time.Time // first dial started, last dial finished
}

func (d DialSummary) Rate() float64 {
	s := d.End.Sub(d.Start).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(d.OK) / s
}

// openPool starts the client workers for spec, waits until they have
// dialed opt.Total connections (within DialBudget), and fails, stopping
// them, when none opened. The caller shuts the pool down.
func OpenPool(ctx context.Context, spec Spec, opt PoolOptions, bar bool) (*Pool, DialSummary, error) {
	p, err := StartPool(ctx, spec, opt)
	if err != nil {
		return nil, DialSummary{}, err
	}
	sum, err := p.WaitReady(ctx, DialBudget(opt.Total, spec.DialTimeout), bar)
	if err == nil && sum.OK == 0 {
		err = fmt.Errorf("no connection could be opened: %v", sum.Errors)
	}
	if err != nil {
		p.Shutdown(3 * time.Second)
		return nil, sum, err
	}
	return p, sum, nil
}

// addDialErrors counts the dialing failures of sum into errs, as "dial: …".
func AddDialErrors(errs map[string]int, sum DialSummary) {
	for k, v := range sum.Errors {
		errs["dial: "+k] += v
	}
}

// waitReady aggregates progress until every worker has finished dialing,
// drawing a progress bar on stderr when bar is true.
func (p *Pool) WaitReady(ctx context.Context, timeout time.Duration, bar bool) (DialSummary, error) {
	sum := DialSummary{Errors: map[string]int{}}
	prog := make(map[int][2]int)
	ready := 0
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	draw := func(final bool) {
		if !bar {
			return
		}
		ok, fail := 0, 0
		for _, v := range prog {
			ok += v[0]
			fail += v[1]
		}
		DrawBar(ok, fail, p.Total, time.Since(start), final)
	}
	for ready < len(p.Workers) {
		select {
		case <-ctx.Done():
			draw(true)
			return sum, ctx.Err()
		case <-deadline.C:
			draw(true)
			return sum, fmt.Errorf("dialing did not finish within %v", timeout)
		case <-tick.C:
			draw(false)
		case e := <-p.Events:
			switch e.Type {
			case "progress":
				prog[e.Worker] = [2]int{e.OK, e.Fail}
			case "ready":
				ready++
				prog[e.Worker] = [2]int{e.OK, e.Fail}
				sum.OK += e.OK
				sum.Fail += e.Fail
				for k, v := range e.Errors {
					sum.Errors[k] += v
				}
				if s := time.Unix(0, e.DialStart); sum.Start.IsZero() || s.Before(sum.Start) {
					sum.Start = s
				}
				if t := time.Unix(0, e.DialEnd); t.After(sum.End) {
					sum.End = t
				}
			case "fatal":
				draw(true)
				return sum, fmt.Errorf("worker %d: %s", e.Worker, e.Err)
			case "exit":
				p.Alive--
				draw(true)
				return sum, fmt.Errorf("worker %d ended while dialing", e.Worker)
			}
		}
	}
	draw(true)
	return sum, nil
}

// collect waits for one event of type typ from every worker.
func (p *Pool) Collect(ctx context.Context, typ string, timeout time.Duration) ([]Event, error) {
	got := make(map[int]Event)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(got) < len(p.Workers) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("%d of %d workers sent no %q within %v", len(p.Workers)-len(got), len(p.Workers), typ, timeout)
		case e := <-p.Events:
			switch e.Type {
			case typ:
				got[e.Worker] = e
			case "fatal":
				return nil, fmt.Errorf("worker %d: %s", e.Worker, e.Err)
			case "exit":
				p.Alive--
				if _, ok := got[e.Worker]; !ok {
					return nil, fmt.Errorf("worker %d ended before sending %q", e.Worker, typ)
				}
			}
		}
	}
	out := make([]Event, 0, len(got))
	for _, e := range got {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Worker < out[j].Worker })
	return out, nil
}

// closeAll asks every worker to close its connections and report, then
// waits for all of them to exit. It returns the "done" events it got.
func (p *Pool) CloseAll(timeout time.Duration) ([]Event, error) {
	err := p.Broadcast(Command{Cmd: "close"})
	var done []Event
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for p.Alive > 0 {
		select {
		case e := <-p.Events:
			switch e.Type {
			case "done":
				done = append(done, e)
			case "fatal":
				err = errors.Join(err, fmt.Errorf("worker %d: %s", e.Worker, e.Err))
			case "exit":
				p.Alive--
			}
		case <-deadline.C:
			p.Shutdown(3 * time.Second)
			return done, errors.Join(err, fmt.Errorf("workers did not exit within %v", timeout))
		}
	}
	p.Shutdown(0)
	return done, err
}

// shutdown ends every worker: stop (EOF on stdin), then kill after grace.
func (p *Pool) Shutdown(grace time.Duration) {
	for _, w := range p.Workers {
		w.stop()
	}
	deadline := time.After(grace)
	for p.Alive > 0 {
		select {
		case e := <-p.Events:
			if e.Type == "exit" {
				p.Alive--
			}
		case <-deadline:
			for _, w := range p.Workers {
				w.kill()
			}
			// Drain until every forwarding goroutine has reported the exit.
			hard := time.After(5 * time.Second)
			for p.Alive > 0 {
				select {
				case e := <-p.Events:
					if e.Type == "exit" {
						p.Alive--
					}
				case <-hard:
					return
				}
			}
			return
		}
	}
}

// drawBar renders e.g. "[#####.....] 9500/19000 3100/s" on stderr.
func DrawBar(ok, fail, total int, elapsed time.Duration, final bool) {
	const width = 30
	doneN := ok + fail
	filled := 0
	if total > 0 {
		filled = doneN * width / total
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(ok) / s
	}
	line := fmt.Sprintf("\r[%s%s] %d/%d %.0f/s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), doneN, total, rate)
	if fail > 0 {
		line += fmt.Sprintf(" (%d failed)", fail)
	}
	if final {
		line += "\n"
	}
	io.WriteString(os.Stderr, line)
}

// splitProcs is the default worker count: one per 9,000 connections.
func SplitProcs(n, procs int) int {
	if procs > 0 {
		return procs
	}
	p := (n + 8999) / 9000
	if p < 1 {
		p = 1
	}
	return p
}

// parseSrc splits "-src 127.0.0.2,127.0.0.3".
func ParseSrc(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// resultEvent is the "result" event carrying a workload's part of the
// figures; it goes through JSON whether the worker is a child or not, so
// both kinds of worker are the same to the parent.
func ResultEvent(part any) Event {
	b, err := json.Marshal(part)
	if err != nil {
		return Event{Type: "fatal", Err: fmt.Sprintf("encode result: %v", err)}
	}
	return Event{Type: "result", Part: b}
}

// decodePart decodes a "result" event's part.
func DecodePart[T any](e Event) (*T, error) {
	if len(e.Part) == 0 {
		return nil, fmt.Errorf("worker %d sent an empty result", e.Worker)
	}
	v := new(T)
	if err := json.Unmarshal(e.Part, v); err != nil {
		return nil, fmt.Errorf("worker %d: bad result: %w", e.Worker, err)
	}
	return v, nil
}

// DialBudget bounds the whole dialing phase: generous, but finite.
func DialBudget(n int, dialTimeout time.Duration) time.Duration {
	return 2*dialTimeout + time.Duration(n)*5*time.Millisecond + 30*time.Second
}

// InProc reports whether the pool is one worker running in this process.
func (p *Pool) InProc() bool { return len(p.Workers) == 1 && p.Workers[0].Pid == 0 }
