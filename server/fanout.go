package server

import (
	"sync"
	"sync/atomic"
)

// A Broadcast or Publish past broadcastSerial connections splits its
// writes into shares, one per worker (a worker's wheel slots, or its part
// of a topic), and hands them to the fan-out goroutines: Workers-1 of
// them, started at the first such call and stopped with the server. The
// calling goroutine claims shares as well, so a call never waits for a
// goroutine to be free: if all are busy with other calls, it writes every
// share itself. A call is a pooled fanCall (no allocation per call); its
// state word (generation, shares, next share) is the only thing a
// goroutine reads before it has claimed a share, so one that comes late,
// after the call ended or its fanCall went to another call, claims
// nothing of it.

// fanCall is one parallel Broadcast or Publish.
type fanCall struct {
	s *Server
	// Set before state announces the call; read only by whoever claimed
	// a share, until its wg.Done.
	f *Frame
	p Policy
	t *topic // nil: a Broadcast (shares are workers)

	state atomic.Uint64 // gen<<32 | shares<<16 | next share
	wg    sync.WaitGroup

	mu    sync.Mutex
	total FanoutResult
}

// fanOffer is a call offered to a fan-out goroutine: it may claim shares
// while the call's generation is still gen.
type fanOffer struct {
	c   *fanCall
	gen uint32
}

// fanPool is the Server's fan-out goroutines and its pool of calls.
type fanPool struct {
	once  sync.Once
	work  chan fanOffer
	quit  chan struct{}
	calls sync.Pool
}

// fanout writes the shares of f (a topic's parts, or every worker's slots
// when t is nil) on the calling goroutine and the fan-out goroutines, and
// returns when every share is written.
func (s *Server) fanout(t *topic, f *Frame, p Policy, shares int) FanoutResult {
	fp := &s.fan
	fp.once.Do(func() {
		helpers := len(s.workers) - 1
		fp.work = make(chan fanOffer, 4*helpers)
		fp.quit = make(chan struct{})
		for range helpers {
			go fp.loop()
		}
	})
	c, _ := fp.calls.Get().(*fanCall)
	if c == nil {
		c = &fanCall{s: s}
	}
	c.f, c.p, c.t = f, p, t
	c.total = FanoutResult{}
	c.wg.Add(shares)
	gen := uint32(c.state.Load()>>32) + 1
	c.state.Store(uint64(gen)<<32 | uint64(shares)<<16)
	for range shares - 1 {
		select {
		case fp.work <- fanOffer{c, gen}:
		default: // all busy: this goroutine writes the rest
		}
	}
	c.claim(gen)
	c.wg.Wait()
	r := c.total
	c.f, c.t = nil, nil
	fp.calls.Put(c)
	return r
}

// loop is a fan-out goroutine.
func (fp *fanPool) loop() {
	for {
		select {
		case o := <-fp.work:
			o.c.claim(o.gen)
		case <-fp.quit:
			return
		}
	}
}

// claim writes shares of the call while it is generation gen and has
// shares left.
func (c *fanCall) claim(gen uint32) {
	for {
		st := c.state.Load()
		if uint32(st>>32) != gen {
			return
		}
		n, i := int(st>>16&0xffff), int(st&0xffff)
		if i >= n {
			return
		}
		if !c.state.CompareAndSwap(st, st+1) {
			continue
		}
		var r FanoutResult
		if c.t != nil {
			c.s.publishPart(&c.t.parts[i], c.f, c.p, &r)
		} else {
			c.s.broadcastTo(c.s.workers[i], c.f, c.p, &r)
		}
		c.mu.Lock()
		c.total.add(r)
		c.mu.Unlock()
		c.wg.Done()
	}
}

// stop ends the fan-out goroutines (Server.stop). A call after it writes
// every share itself.
func (fp *fanPool) stop() {
	fp.once.Do(func() {}) // none started: none will be
	if fp.quit != nil {
		close(fp.quit)
	}
}
