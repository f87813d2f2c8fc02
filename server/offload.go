package server

import (
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
)

// The offload pool: blocking work (a database query, a call to another
// service) that an App hands over with Conn.Go, run on a fixed set of
// Config.OffloadWorkers goroutines instead of the worker, which must not
// block. The pool keeps the engine's promise of order: one connection's
// jobs run one at a time, in the order Go accepted them, while different
// connections' jobs run concurrently.
//
// Ownership. Each connection that has used Go has an offq (in its connExt,
// made at its first Go): a ring of at most Config.OffloadBacklog jobs and a
// flag, queued, set while the offq is in the pool's run list or a pool
// goroutine is running one of its jobs. Only the goroutine that clears
// queued from false to true puts the offq in the list, so an offq is in
// the list at most once and at most one pool goroutine runs its jobs: that
// is the order. A goroutine runs one job, then puts the offq at the back
// of the list if it has more, so a connection with a deep backlog takes
// its turn with the others. The copy of the data a job carries is a
// pooled buffer charged to Config.MaxBuffered (the server-wide budget of
// held bytes): the job owns it until fn returns, then it goes back.
//
// The offq outlives its connection: the connExt is dropped when the
// connection is gone, but jobs already accepted still run (their sends
// report Closed) and the offq is collected after the last one. Shutdown
// waits for accepted jobs, bounded by its context; what is still queued
// when the context ends is dropped (counted) and never runs.
//
// The goroutines start at the first Go, so a server whose App never
// offloads has none; they park on a condition variable when the list is
// empty, which costs nothing while idle.

// offJob is one accepted Go call.
type offJob struct {
	fn  func(c Conn, data []byte)
	buf *[]byte // the copy of data (held: charged to MaxBuffered), nil when empty
}

// offq is one connection's backlog. Fields below mu are guarded by it;
// next is guarded by the pool's lock.
type offq struct {
	h    Conn
	next *offq // run list link

	mu      sync.Mutex
	jobs    []offJob // ring of Config.OffloadBacklog entries
	head    int
	n       int  // jobs waiting in the ring
	running bool // a pool goroutine is running one (it counts against the backlog)
	queued  bool // in the run list, or a pool goroutine is running its job
}

// offloadPool is the pool shared by every connection of a server.
type offloadPool struct {
	s       *Server
	started atomic.Bool
	pending atomic.Int64 // jobs accepted and not finished or dropped

	mu         sync.Mutex
	cond       sync.Cond // signalled when the run list gains an offq, broadcast at stop
	head, tail *offq
	running    int     // goroutines started and not returned
	cur        []*offq // cur[i]: the offq goroutine i is running a job of, or nil
	stopping   bool    // stop has run: the goroutines return, nothing more runs
}

// Go runs fn(c, data) on the offload pool (Config.OffloadWorkers
// goroutines): after every job that an earlier Go on this connection
// handed over, and concurrently with other connections' jobs. fn may
// block (that is what it is for) and may send on c from there; the worker
// goes on serving its other connections meanwhile, and OnMessage may
// return at once.
//
// data is copied: fn gets its own copy, valid until fn returns (OnMessage's
// payload is borrowed, so pass it here rather than capturing it). The copy
// is a pooled buffer charged to Config.MaxBuffered; no allocation per call
// when fn is a function that captures nothing (a closure that captures
// variables allocates, as in any Go code).
//
// The result is Queued when the job was accepted: it will run exactly
// once, even if the connection closes first (its sends then report
// Closed; a job may run after OnClose). Skipped when the connection
// already has Config.OffloadBacklog jobs waiting or running, or the copy
// would pass Config.MaxBuffered: nothing was queued and the application
// decides (answer "busy", Close with CloseTryAgainLater); counted in
// Stats.OffloadRefused. Closed when the connection is closed or closing,
// or the server is shutting down. A panic in fn is recovered, counted and
// reported like one in an App method, and closes c with 1011.
func (h Conn) Go(fn func(c Conn, data []byte), data []byte) SendResult {
	if !h.lock() {
		return Closed
	}
	c := h.c
	if c.closeSent {
		c.mu.Unlock()
		return Closed
	}
	ext := c.extLocked()
	q := ext.off
	if q == nil {
		q = &offq{h: h, jobs: make([]offJob, h.s.cfg.OffloadBacklog)}
		ext.off = q
	}
	c.mu.Unlock()
	return h.s.off.submit(q, fn, data)
}

// submit queues one job on q.
func (p *offloadPool) submit(q *offq, fn func(Conn, []byte), data []byte) SendResult {
	s := p.s
	if !p.started.Load() {
		p.start()
	}
	var buf *[]byte
	if len(data) > 0 {
		var ok bool
		if buf, ok = s.holdBuf(nil, len(data)); !ok {
			s.stats.offloadRefused.Add(1)
			return Skipped
		}
		*buf = append((*buf)[:0], data...)
	}
	q.mu.Lock()
	if q.n == len(q.jobs) || q.running && q.n == len(q.jobs)-1 {
		q.mu.Unlock()
		s.dropBuf(buf)
		s.stats.offloadRefused.Add(1)
		return Skipped
	}
	q.jobs[(q.head+q.n)%len(q.jobs)] = offJob{fn: fn, buf: buf}
	q.n++
	p.pending.Add(1)
	schedule := !q.queued
	q.queued = true
	q.mu.Unlock()
	s.stats.offloaded.Add(1)
	if schedule && !p.push(q) {
		return Closed // the pool has stopped; push dropped the job
	}
	return Queued
}

// start starts the goroutines, once.
func (p *offloadPool) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started.Load() || p.stopping {
		return
	}
	p.cond.L = &p.mu
	p.cur = make([]*offq, p.s.cfg.OffloadWorkers)
	for i := range p.s.cfg.OffloadWorkers {
		p.running++
		go p.loop(i)
	}
	p.started.Store(true)
}

// push appends q (queued set) to the run list and wakes one goroutine.
// After stop it drops q's jobs instead and returns false.
func (p *offloadPool) push(q *offq) bool {
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		p.drop(q)
		return false
	}
	if p.tail == nil {
		p.head = q
	} else {
		p.tail.next = q
	}
	p.tail = q
	p.cond.Signal()
	p.mu.Unlock()
	return true
}

// loop is pool goroutine i.
func (p *offloadPool) loop(i int) {
	for {
		p.mu.Lock()
		for p.head == nil && !p.stopping {
			p.cond.Wait()
		}
		if p.stopping {
			p.running--
			p.mu.Unlock()
			return
		}
		q := p.head
		p.head = q.next
		if p.head == nil {
			p.tail = nil
		}
		q.next = nil
		p.cur[i] = q
		p.mu.Unlock()

		q.mu.Lock()
		j := q.jobs[q.head]
		q.jobs[q.head] = offJob{}
		q.head = (q.head + 1) % len(q.jobs)
		q.n--
		q.running = true
		q.mu.Unlock()

		p.run(q.h, j)

		p.mu.Lock()
		p.cur[i] = nil
		p.mu.Unlock()
		q.mu.Lock()
		q.running = false
		more := q.n > 0
		q.queued = more
		q.mu.Unlock()
		if more {
			p.push(q) // to the back: the other connections go first
		}
	}
}

// run runs one job and gives its buffer back.
func (p *offloadPool) run(h Conn, j offJob) {
	var data []byte
	if j.buf != nil {
		data = *j.buf
	}
	if p.call(h, j.fn, data) {
		h.Close(CloseInternalError, "")
	}
	p.s.dropBuf(j.buf)
	p.pending.Add(-1)
}

// call runs fn behind a recover; it reports whether fn panicked.
func (p *offloadPool) call(h Conn, fn func(Conn, []byte), data []byte) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			p.s.stats.appPanics.Add(1)
			// Not panicError: this goroutine does not run c, so it reads
			// the address through the handle.
			p.s.cfg.OnError(&PanicError{Callback: "Go", Conn: h, FD: h.c.fd,
				RemoteAddr: h.RemoteAddr(), Value: r, Stack: debug.Stack()})
		}
	}()
	fn(h, data)
	return false
}

// drop discards q's waiting jobs (the pool has stopped) and counts them.
func (p *offloadPool) drop(q *offq) {
	q.mu.Lock()
	for q.n > 0 {
		j := q.jobs[q.head]
		q.jobs[q.head] = offJob{}
		q.head = (q.head + 1) % len(q.jobs)
		q.n--
		p.s.dropBuf(j.buf)
		p.pending.Add(-1)
		p.s.stats.offloadDropped.Add(1)
	}
	q.queued = false
	q.mu.Unlock()
}

// stop makes the goroutines return once their current job (if any) is
// done and drops every job still waiting: those in the run list and those
// behind a job that is running. Called by Server.stop.
func (p *offloadPool) stop() {
	p.mu.Lock()
	p.stopping = true
	list := p.head
	p.head, p.tail = nil, nil
	busy := slices.Clone(p.cur)
	if p.cond.L != nil {
		p.cond.Broadcast()
	}
	p.mu.Unlock()
	for q := list; q != nil; {
		next := q.next
		q.next = nil
		p.drop(q)
		q = next
	}
	for _, q := range busy {
		if q != nil {
			p.drop(q) // the running job is out of the ring: it finishes
		}
	}
}
