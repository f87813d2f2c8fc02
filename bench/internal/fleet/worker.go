package fleet

// The worker: opens its share of connections, then runs the mode's part of
// the workload on command. It is the same code in a child process and
// in-process.

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

// WorkerFunc is a workload's worker: it opens spec.N connections (dialAll),
// reports "ready", then runs its part of the workload on command, emitting
// events. It returns when told to close or when ctx ends; it must not keep
// goroutines or connections after it returns.
type WorkerFunc func(ctx context.Context, spec Spec, cmds <-chan Command, emit func(Event)) error

// workers maps a spec's Mode to its worker. Registration happens before
// any pool starts (in main), so the map is only read concurrently.
var workers = map[string]WorkerFunc{}

// RegisterWorker makes fn the worker of mode, in this process and in
// child processes started with "__worker".
func RegisterWorker(mode string, fn WorkerFunc) {
	if _, dup := workers[mode]; dup {
		panic("fleet: worker mode " + mode + " registered twice")
	}
	workers[mode] = fn
}

// runWorker hands spec to its mode's worker.
func runWorker(ctx context.Context, spec Spec, cmds <-chan Command, emit func(Event)) error {
	fn := workers[spec.Mode]
	if fn == nil {
		return fmt.Errorf("fleet: unknown worker mode %q", spec.Mode)
	}
	return fn(ctx, spec, cmds, emit)
}

// dialPlan says, per connection, how to dial it and what to do once it is
// open (and greeted, when the spec asks for the greeting).
type DialPlan struct {
	Opts      func(i int) wsclient.Options  // i is the index within the worker
	Connected func(i int, c *wsclient.Conn) // called from the dialing goroutine
}

// dialAll opens spec.N connections with at most spec.DialConcurrency in
// flight, paced to spec.Rate per second when set, emitting progress every
// 200 ms and "ready" at the end. conns[i] is nil for a failed connection.
func DialAll(ctx context.Context, spec Spec, plan DialPlan, emit func(Event)) []*wsclient.Conn {
	conns := make([]*wsclient.Conn, spec.N)
	conc := spec.DialConcurrency
	if conc <= 0 {
		conc = 64
	}
	sem := make(chan struct{}, conc)
	var ok, fail atomic.Int64
	var emu sync.Mutex
	errs := map[string]int{}
	start := time.Now()

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				emit(Event{Type: "progress", OK: int(ok.Load()), Fail: int(fail.Load())})
			case <-stopProgress:
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for i := 0; i < spec.N; i++ {
		if spec.Rate > 0 {
			at := start.Add(time.Duration(float64(i) / spec.Rate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			fail.Add(int64(spec.N - i))
			emu.Lock()
			errs["cancelled"] += spec.N - i
			emu.Unlock()
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			o := plan.Opts(i)
			c, err := wsclient.Dial(ctx, o)
			if err == nil && spec.Greeting {
				if err = c.ExpectGreeting(o.Timeout); err != nil {
					c.Close()
				}
			}
			if err != nil {
				fail.Add(1)
				emu.Lock()
				errs[wsclient.ErrClass(err)]++
				emu.Unlock()
				return
			}
			conns[i] = c
			ok.Add(1)
			if plan.Connected != nil {
				plan.Connected(i, c)
			}
		}(i)
	}
	wg.Wait()
	end := time.Now()
	close(stopProgress)
	<-progressDone
	emit(Event{Type: "ready", OK: int(ok.Load()), Fail: int(fail.Load()), Errors: errs,
		DialStart: start.UnixNano(), DialEnd: end.UnixNano()})
	return conns
}

// defaultOpts is the dial plan's usual options for connection i.
func (spec Spec) DefaultOpts(i int) wsclient.Options {
	o := wsclient.Options{Addr: spec.Addr, Timeout: spec.DialTimeout, ReadBuf: spec.ReadBuf, Stamps: spec.Stamps, Deflate: spec.Deflate}
	if len(spec.Src) > 0 {
		o.Src = spec.Src[(spec.Offset+i)%len(spec.Src)]
	}
	return o
}

// waitCmd waits for a command named want (other commands are ignored,
// except "close", which always ends the wait). ok is false when the worker
// should end.
func WaitCmd(ctx context.Context, cmds <-chan Command, want string) (Command, bool) {
	for {
		select {
		case <-ctx.Done():
			return Command{}, false
		case c := <-cmds:
			if c.Cmd == want {
				return c, true
			}
			if c.Cmd == "close" {
				return c, false
			}
		}
	}
}

// closeConns closes every non-nil connection.
func CloseConns(conns []*wsclient.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// ignoreInterrupts makes a worker deaf to Ctrl-C (its parent handles it).
func IgnoreInterrupts() {
	signal.Ignore(os.Interrupt)
}
