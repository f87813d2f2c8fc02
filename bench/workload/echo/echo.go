package echo

// echo: throughput, round-trip latency and CPU cost of echoing messages.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsmill/wsmill/bench/internal/cli"
	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/internal/stats"
	"github.com/wsmill/wsmill/bench/internal/wsclient"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Config is one echo run.
type Config struct {
	cli.Target
	fleet.Dialing
	C        int
	Size     int
	K        int
	Duration time.Duration
	Warmup   time.Duration
	Text     bool
	Greeting bool
	Quiet    bool
	Deflate  bool
	Payload  string
}

func (c *Config) register(fs *flag.FlagSet) {
	fs.IntVar(&c.C, "c", 10, "connections")
	fs.IntVar(&c.Size, "size", 128, "message payload bytes")
	fs.IntVar(&c.K, "k", 1, "messages outstanding per connection")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured time (after the warm-up)")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "warm-up before measuring (excluded from every figure)")
	fs.BoolVar(&c.Text, "text", false, "send text messages instead of binary")
	fs.BoolVar(&c.Greeting, "greeting", true, "require the \"Hi Client!\" greeting on each connection")
	c.Dialing.Register(fs, 1, "1: in this process", false)
	c.registerDeflate(fs)
}

// Command runs "wsload echo".
func Command(ctx context.Context, args []string) error {
	var cfg Config
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	cfg.Target.Register(fs, "its CPU time")
	cfg.register(fs)
	_, err := report.Command(ctx, fs, args, func(ctx context.Context) (*Result, error) { return Run(ctx, cfg) }, Print)
	return err
}

// echoWorkerPart is one worker's share of the echo result.
type echoWorkerPart struct {
	Msgs     int64          `json:"msgs"`     // echoes received inside the window
	Bytes    int64          `json:"bytes"`    // their payload bytes
	Sent     int64          `json:"sent"`     // messages sent over the whole run
	Pushes   int64          `json:"pushes"`   // time pushes skipped
	Mismatch int            `json:"mismatch"` // echoes that differed from what was sent
	Lost     int            `json:"lost"`     // connections that ended early
	Errors   map[string]int `json:"errors,omitempty"`
	Hist     string         `json:"hist"`  // round trips in µs (HdrHistogram V2, base64)
	CPU      float64        `json:"cpu_s"` // this process's CPU (RUSAGE_SELF) inside the window
	echoWirePart
}

// Result is the RESULT of an echo run.
type Result struct {
	Workload       string         `json:"workload"`
	Server         string         `json:"server,omitempty"`
	Conns          int            `json:"conns"`
	Connected      int            `json:"connected"`
	Size           int            `json:"size"`
	K              int            `json:"k"`
	Text           bool           `json:"text"`
	Procs          int            `json:"procs"`
	Seconds        float64        `json:"seconds"`
	Msgs           int64          `json:"msgs"`
	MsgsPerSec     float64        `json:"msgs_per_s"`
	MBPerSec       float64        `json:"mb_per_s"`
	P50us          float64        `json:"p50_us"`
	P99us          float64        `json:"p99_us"`
	P999us         float64        `json:"p999_us"`
	MaxUs          float64        `json:"max_us"`
	Mismatch       int            `json:"mismatch"`
	Lost           int            `json:"lost"`
	Pushes         int64          `json:"pushes_skipped"`
	Errors         map[string]int `json:"errors,omitempty"`
	ClientCPU      float64        `json:"client_cpu_s"`
	ClientCPUTotal float64        `json:"client_cpu_total_s"`
	ServerCPU      float64        `json:"server_cpu_s"`
	MsgsPerSrvCPU  float64        `json:"msgs_per_server_cpu_s"`
	echoWire
}

// Run drives cfg.C connections echoing for warm-up + duration.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.C < 1 || cfg.K < 1 || cfg.Size < 1 {
		return nil, fmt.Errorf("-c, -k and -size must be at least 1")
	}
	if cfg.Duration <= 0 {
		return nil, fmt.Errorf("-duration must be positive")
	}
	if err := cfg.checkPayload(); err != nil {
		return nil, err
	}
	cpu0 := proc.SelfCPU()
	procs := max(cfg.Procs, 1)
	spec := cfg.Dialing.Spec("echo", cfg.Addr)
	spec.Greeting, spec.ReadBuf = cfg.Greeting, 32<<10
	spec.Size, spec.K, spec.Text, spec.Deflate, spec.Payload = cfg.Size, cfg.K, cfg.Text, cfg.Deflate, cfg.Payload
	p, sum, err := fleet.OpenPool(ctx, spec, fleet.PoolOptions{Total: cfg.C, Procs: procs, InProc: true}, !cfg.Quiet && cfg.C >= 500)
	if err != nil {
		return nil, err
	}
	defer p.Shutdown(3 * time.Second)
	res := &Result{Workload: "echo", Conns: cfg.C, Connected: sum.OK, Size: cfg.Size, K: cfg.K,
		Text: cfg.Text, Procs: len(p.Workers), Seconds: cfg.Duration.Seconds(), Errors: map[string]int{}}
	fleet.AddDialErrors(res.Errors, sum)
	if err := p.Broadcast(fleet.Command{Cmd: "start", Warmup: cfg.Warmup, Duration: cfg.Duration}); err != nil {
		return nil, err
	}
	// The parent samples the server (and, with worker processes, itself)
	// at the window's edges; workers sample their own CPU.
	start := time.Now()
	var srv0, srv1, self0, self1 float64
	if err := proc.Sleep(ctx, cfg.Warmup); err != nil {
		return nil, err
	}
	if cfg.PID > 0 {
		if srv0, err = proc.CPU(cfg.PID); err != nil {
			return nil, err
		}
	}
	self0 = proc.RusageCPU(syscall.RUSAGE_SELF)
	if err := proc.Sleep(ctx, time.Until(start.Add(cfg.Warmup+cfg.Duration))); err != nil {
		return nil, err
	}
	if cfg.PID > 0 {
		if srv1, err = proc.CPU(cfg.PID); err != nil {
			return nil, err
		}
	}
	self1 = proc.RusageCPU(syscall.RUSAGE_SELF)
	parts, err := p.Collect(ctx, "result", 30*time.Second)
	if err != nil {
		return nil, err
	}
	h := stats.LatencyHist()
	for _, e := range parts {
		r, err := fleet.DecodePart[echoWorkerPart](e)
		if err != nil {
			return nil, err
		}
		res.Msgs += r.Msgs
		res.MBPerSec += float64(r.Bytes)
		res.Mismatch += r.Mismatch
		res.Lost += r.Lost
		res.Pushes += r.Pushes
		res.ClientCPU += r.CPU
		res.addWire(r.echoWirePart)
		for k, v := range r.Errors {
			res.Errors[k] += v
		}
		wh, err := hdr.Decode([]byte(r.Hist))
		if err != nil {
			return nil, fmt.Errorf("worker %d histogram: %w", e.Worker, err)
		}
		h.Merge(wh)
	}
	if _, err := p.CloseAll(15 * time.Second); err != nil {
		return nil, err
	}
	if !p.InProc() {
		res.ClientCPU += self1 - self0 // the parent's share; workers counted their own
	}
	res.ClientCPUTotal = proc.SelfCPU() - cpu0
	secs := cfg.Duration.Seconds()
	res.MsgsPerSec = float64(res.Msgs) / secs
	res.endWire(cfg, res.Msgs)
	res.MBPerSec = res.MBPerSec / 1e6 / secs
	res.P50us = float64(h.ValueAtQuantile(50))
	res.P99us = float64(h.ValueAtQuantile(99))
	res.P999us = float64(h.ValueAtQuantile(99.9))
	res.MaxUs = float64(h.Max())
	if cfg.PID > 0 {
		res.ServerCPU = srv1 - srv0
		if res.ServerCPU > 0 {
			res.MsgsPerSrvCPU = float64(res.Msgs) / res.ServerCPU
		}
	}
	if res.Msgs == 0 {
		return res, fmt.Errorf("no echo was received in the measured window (errors: %v)", res.Errors)
	}
	return res, nil
}

// Print writes r as a table.
func Print(w io.Writer, r *Result) {
	t := report.NewTable(w)
	kind := "binary"
	if r.Text {
		kind = "text"
	}
	t.Row("connections (connected)", fmt.Sprintf("%d (%d), %d client process(es)", r.Conns, r.Connected, r.Procs))
	t.Row("message", fmt.Sprintf("%d bytes %s, %d outstanding per connection", r.Size, kind, r.K))
	t.Row("measured", fmt.Sprintf("%.1f s (after warm-up)", r.Seconds))
	t.Row("echoes", fmt.Sprintf("%d (%.0f msgs/s, %.2f MB/s)", r.Msgs, r.MsgsPerSec, r.MBPerSec))
	t.Row("round trip p50 / p99 / p99.9 / max", fmt.Sprintf("%.0f / %.0f / %.0f / %.0f µs", r.P50us, r.P99us, r.P999us, r.MaxUs))
	t.Row("client CPU (window / whole run)", fmt.Sprintf("%.2f s / %.2f s", r.ClientCPU, r.ClientCPUTotal))
	if r.ServerCPU > 0 {
		t.Row("server CPU", fmt.Sprintf("%.2f s (%.0f%% of one core)", r.ServerCPU, 100*r.ServerCPU/r.Seconds))
		t.Row("msgs per server CPU-second", fmt.Sprintf("%.0f", r.MsgsPerSrvCPU))
	} else {
		t.Row("server CPU", "not measured (no -pid)")
	}
	printWire(t, r)
	t.Row("mismatched echoes / lost connections", fmt.Sprintf("%d / %d", r.Mismatch, r.Lost))
	t.Row("time pushes skipped", strconv.FormatInt(r.Pushes, 10))
	for k, v := range r.Errors {
		t.Row("  error", fmt.Sprintf("%d × %s", v, k))
	}
	t.Flush()
}

// echoConn is one connection's state during the echo run.
type echoConn struct {
	c      *wsclient.Conn
	tokens chan struct{}  // one per message that may be outstanding
	sentAt []atomic.Int64 // send time (ns since base) of seq, at seq%K
	sent   atomic.Int64   // messages written
	recv   atomic.Int64   // echoes verified
	ended  atomic.Bool    // the reader has returned
}

// Worker runs one client process's echo connections.
func Worker(ctx context.Context, spec fleet.Spec, cmds <-chan fleet.Command, emit func(fleet.Event)) error {
	conns := fleet.DialAll(ctx, spec, fleet.DialPlan{Opts: spec.DefaultOpts}, emit)
	defer fleet.CloseConns(conns)
	cmd, ok := fleet.WaitCmd(ctx, cmds, "start")
	if !ok {
		emit(fleet.Event{Type: "done"})
		return nil
	}
	op := byte(wsclient.OpBinary)
	if spec.Text {
		op = wsclient.OpText
	}
	fill, err := echoFill(spec)
	if err != nil {
		return err
	}
	var wire echoWireCount
	base := time.Now()
	now := func() int64 { return int64(time.Since(base)) }
	w0 := int64(cmd.Warmup)
	w1 := w0 + int64(cmd.Duration)

	var (
		hmu      sync.Mutex
		hist     = stats.LatencyHist()
		msgs     atomic.Int64
		nbytes   atomic.Int64
		pushes   atomic.Int64
		mismatch atomic.Int64
		lost     atomic.Int64
		stopping atomic.Bool
		emu      sync.Mutex
		errs     = map[string]int{}
	)
	noteErr := func(what string, err error) {
		emu.Lock()
		errs[what+wsclient.ErrClass(err)]++
		emu.Unlock()
	}
	var ecs []*echoConn
	for _, c := range conns {
		if c == nil {
			continue
		}
		ec := &echoConn{c: c, tokens: make(chan struct{}, spec.K), sentAt: make([]atomic.Int64, spec.K)}
		wire.conn(c)
		for range spec.K {
			ec.tokens <- struct{}{}
		}
		ecs = append(ecs, ec)
	}
	stopWrite := make(chan struct{})
	var writers, readers sync.WaitGroup
	for _, ec := range ecs {
		ec.c.NC.SetWriteDeadline(base.Add(time.Duration(w1) + 10*time.Second))
		writers.Add(1)
		go func() { // writer
			defer writers.Done()
			buf := make([]byte, spec.Size)
			for seq := uint64(0); ; seq++ {
				select {
				case <-ec.tokens:
				case <-stopWrite:
					return
				}
				if now() >= w1 {
					return
				}
				fill(buf, seq)
				at := now()
				ec.sentAt[seq%uint64(spec.K)].Store(at)
				n, err := ec.c.WriteMessage(op, buf)
				if err != nil {
					if !stopping.Load() {
						noteErr("write: ", err)
					}
					return
				}
				ec.sent.Add(1)
				if at >= w0 && at < w1 {
					wire.sent(n)
				}
			}
		}()
		readers.Add(1)
		go func() { // reader
			defer readers.Done()
			defer ec.ended.Store(true)
			want := make([]byte, spec.Size)
			for seq := uint64(0); ; seq++ {
				var mop byte
				var p []byte
				var err error
				for {
					mop, p, err = ec.c.ReadMessage()
					if err == nil && mop == wsclient.OpText && wsclient.IsPush(mop, p) {
						pushes.Add(1)
						continue
					}
					break
				}
				t := now()
				if err != nil {
					if !stopping.Load() {
						lost.Add(1)
						noteErr("read: ", err)
					}
					return
				}
				fill(want, seq)
				if mop != op || !bytes.Equal(p, want) {
					mismatch.Add(1)
					emu.Lock()
					errs[fmt.Sprintf("echo mismatch (op %d, %d bytes; first at seq %d)", mop, len(p), seq)]++
					emu.Unlock()
					ec.c.Close()
					return
				}
				sent := ec.sentAt[seq%uint64(spec.K)].Load()
				if sent >= w0 && t < w1 {
					us := (t - sent) / 1000
					hmu.Lock()
					hist.RecordValue(max(us, 1))
					hmu.Unlock()
					msgs.Add(1)
					nbytes.Add(int64(len(p)))
					wire.received(ec.c.LastWire())
				}
				ec.recv.Add(1)
				ec.tokens <- struct{}{}
			}
		}()
	}

	// CPU of this process inside the window.
	proc.Sleep(ctx, time.Duration(w0-now()))
	cpu0 := proc.RusageCPU(syscall.RUSAGE_SELF)
	proc.Sleep(ctx, time.Duration(w1-now()))
	cpu1 := proc.RusageCPU(syscall.RUSAGE_SELF)

	// Stop writing, wait (bounded) for the outstanding echoes, then close.
	close(stopWrite)
	writers.Wait()
	drainBy := time.Now().Add(5 * time.Second)
	for time.Now().Before(drainBy) {
		pending := false
		for _, ec := range ecs {
			if ec.recv.Load() < ec.sent.Load() && !ec.closedEarly() {
				pending = true
				break
			}
		}
		if !pending {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopping.Store(true)
	fleet.CloseConns(conns)
	readers.Wait()

	var sent int64
	for _, ec := range ecs {
		sent += ec.sent.Load()
	}
	enc, err := hist.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return fmt.Errorf("encode histogram: %w", err)
	}
	emu.Lock()
	part := &echoWorkerPart{Msgs: msgs.Load(), Bytes: nbytes.Load(), Sent: sent, Pushes: pushes.Load(),
		Mismatch: int(mismatch.Load()), Lost: int(lost.Load()), Errors: errs, Hist: string(enc), CPU: cpu1 - cpu0,
		echoWirePart: wire.part()}
	emit(fleet.ResultEvent(part))
	emu.Unlock()
	fleet.WaitCmd(ctx, cmds, "close")
	emit(fleet.Event{Type: "done"})
	return nil
}

// closedEarly reports whether the connection's reader has ended (error or
// mismatch): such a connection will never catch up.
func (ec *echoConn) closedEarly() bool { return ec.ended.Load() }
