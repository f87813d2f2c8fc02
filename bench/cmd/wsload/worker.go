package main

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

// runWorker dials spec.N connections, reports "ready", and hands over to the
// mode. It returns when told to close or when ctx ends.
func runWorker(ctx context.Context, spec workerSpec, cmds <-chan command, emit func(event)) error {
	switch spec.Mode {
	case "connections":
		return connectionsWorker(ctx, spec, cmds, emit)
	case "echo":
		return echoWorker(ctx, spec, cmds, emit)
	case "push":
		return pushWorker(ctx, spec, cmds, emit)
	case "fanout":
		return fanoutWorker(ctx, spec, cmds, emit)
	case "soak":
		return soakWorker(ctx, spec, cmds, emit)
	}
	return fmt.Errorf("unknown worker mode %q", spec.Mode)
}

// dialPlan says, per connection, how to dial it and what to do once it is
// open (and greeted, when the spec asks for the greeting).
type dialPlan struct {
	opts      func(i int) wsclient.Options  // i is the index within the worker
	connected func(i int, c *wsclient.Conn) // called from the dialing goroutine
}

// dialAll opens spec.N connections with at most spec.DialConcurrency in
// flight, paced to spec.Rate per second when set, emitting progress every
// 200 ms and "ready" at the end. conns[i] is nil for a failed connection.
func dialAll(ctx context.Context, spec workerSpec, plan dialPlan, emit func(event)) []*wsclient.Conn {
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
				emit(event{Type: "progress", OK: int(ok.Load()), Fail: int(fail.Load())})
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
			o := plan.opts(i)
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
			if plan.connected != nil {
				plan.connected(i, c)
			}
		}(i)
	}
	wg.Wait()
	end := time.Now()
	close(stopProgress)
	<-progressDone
	emit(event{Type: "ready", OK: int(ok.Load()), Fail: int(fail.Load()), Errors: errs,
		DialStart: start.UnixNano(), DialEnd: end.UnixNano()})
	return conns
}

// defaultOpts is the dial plan's usual options for connection i.
func (spec workerSpec) defaultOpts(i int) wsclient.Options {
	o := wsclient.Options{Addr: spec.Addr, Timeout: spec.DialTimeout, ReadBuf: spec.ReadBuf, Stamps: spec.Stamps}
	if len(spec.Src) > 0 {
		o.Src = spec.Src[(spec.Offset+i)%len(spec.Src)]
	}
	return o
}

// waitCmd waits for a command named want (other commands are ignored,
// except "close", which always ends the wait). ok is false when the worker
// should end.
func waitCmd(ctx context.Context, cmds <-chan command, want string) (command, bool) {
	for {
		select {
		case <-ctx.Done():
			return command{}, false
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
func closeConns(conns []*wsclient.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// ignoreInterrupts makes a worker deaf to Ctrl-C (its parent handles it).
func ignoreInterrupts() {
	signal.Ignore(os.Interrupt)
}
