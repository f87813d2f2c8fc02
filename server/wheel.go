package server

import (
	"sync"
	"time"
)

// wheel is the single timing wheel: one goroutine that sends the
// application's periodic pushes (Config.Pushes) to every open connection
// once per PushInterval, spread evenly over the interval, checks idle
// connections, and expires the handshake and close deadlines.
//
// Layout: len(slots) slots, each covering tick = PushInterval/len(slots).
// A connection is put in one slot when it opens (round robin, so slots stay
// balanced) and stays there until it closes. Each tick the wheel visits the
// next slot, so a connection is visited exactly once per revolution, i.e.
// once per PushInterval, and the pushes of N connections are spread as N/len
// per tick instead of N at once.
//
// Invariants:
//   - A conn is in a slot iff it is open (phaseOpen) and its slot field is
//     its index (-1 otherwise); slot membership changes only under the slot's
//     lock. Workers remove a conn before it leaves phaseOpen.
//   - Each tick asks each Push for its frame once and sends that one frame
//     to every connection of the slot; a partial write copies the rest into
//     the connection's queue, so no connection keeps a reference to it.
//   - Nothing in a tick allocates, sleeps or blocks on a socket: a push is
//     one non-blocking write under the conn's lock.
type wheel struct {
	s        *Server
	tick     time.Duration
	slots    []wheelSlot
	nextSlot int // round-robin cursor for add; guarded by addMu
	addMu    sync.Mutex

	frames []*Frame // this tick's frame of each Config.Pushes entry

	stop chan struct{}
	done chan struct{}
}

type wheelSlot struct {
	mu    sync.Mutex
	conns []*conn
	_     [32]byte // keep neighbouring slot locks off one cache line
}

// wheelTick is the target slot width: fine enough for sub-tick deadline
// precision, coarse enough that an idle server wakes only 100 times a second.
const wheelTick = 10 * time.Millisecond

// wheelPrealloc bounds the slot entries made at startup.
const wheelPrealloc = 1 << 16

func newWheel(s *Server, interval time.Duration, maxConns int) *wheel {
	n := int(min(max(interval/wheelTick, 1), 1<<16))
	w := &wheel{
		s:     s,
		tick:  interval / time.Duration(n),
		slots: make([]wheelSlot, n),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	// Round robin keeps slots within one of each other, so this capacity is
	// rarely exceeded and adding a connection does not allocate; past it a
	// slot grows by append. The preallocation is bounded (64 Ki entries in
	// all, 512 KiB), so a huge MaxConns costs nothing until connections
	// actually arrive.
	per := min(maxConns/n+2, max(2, wheelPrealloc/n))
	for i := range w.slots {
		w.slots[i].conns = make([]*conn, 0, per)
	}
	w.frames = make([]*Frame, len(s.cfg.Pushes))
	return w
}

func (w *wheel) add(c *conn) {
	w.addMu.Lock()
	i := w.nextSlot
	w.nextSlot = (i + 1) % len(w.slots)
	w.addMu.Unlock()

	s := &w.slots[i]
	s.mu.Lock()
	c.slot, c.pos = int32(i), int32(len(s.conns))
	s.conns = append(s.conns, c)
	s.mu.Unlock()
}

func (w *wheel) remove(c *conn) {
	if c.slot < 0 {
		return
	}
	s := &w.slots[c.slot]
	s.mu.Lock()
	last := len(s.conns) - 1
	moved := s.conns[last]
	s.conns[c.pos] = moved
	moved.pos = c.pos
	s.conns[last] = nil
	s.conns = s.conns[:last]
	c.slot, c.pos = -1, 0
	s.mu.Unlock()
}

// buildFrames asks every Push for this tick's frame.
func (w *wheel) buildFrames(now time.Time) {
	for i, p := range w.s.cfg.Pushes {
		w.frames[i] = w.callFrame(p, now)
	}
}

// callFrame runs one Push.Frame; a panic is counted and reported, and
// sends nothing this tick.
func (w *wheel) callFrame(p Push, now time.Time) (f *Frame) {
	var panicked bool
	defer w.s.recoverApp(&panicked)
	return p.Frame(now)
}

func (w *wheel) run() {
	defer close(w.done)
	timer := time.NewTimer(w.tick)
	defer timer.Stop()
	next := time.Now()
	cursor := 0
	for {
		next = next.Add(w.tick)
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-w.stop:
				return
			}
		} else {
			// Behind schedule (a long GC pause, an overloaded machine):
			// catch up slot by slot without sleeping.
			select {
			case <-w.stop:
				return
			default:
			}
		}
		now := time.Now()
		w.recordLag(now.Sub(next))
		w.buildFrames(now)
		ms := int64(w.s.now() / time.Millisecond)
		w.s.clock.Store(ms)
		w.pushSlot(&w.slots[cursor], ms)
		cursor++
		if cursor == len(w.slots) {
			cursor = 0
		}
		w.s.expireDeadlines()
	}
}

func (w *wheel) pushSlot(s *wheelSlot, now int64) {
	s.mu.Lock()
	for _, c := range s.conns {
		if !w.checkIdle(c, now) {
			continue
		}
		for i, f := range w.frames {
			if f != nil {
				w.push(c, f, w.s.cfg.Pushes[i].Policy)
			}
		}
	}
	s.mu.Unlock()
}

var pingFrame = []byte{0x89, 0x00} // FIN + ping, empty payload

// checkIdle pings a connection that has been silent for IdleTimeout and asks
// its worker to close it when it stays silent for another IdleTimeout. It
// reports whether c is still worth a push. Called with c's slot locked.
func (w *wheel) checkIdle(c *conn, now int64) bool {
	idle := w.s.cfg.IdleTimeout.Milliseconds()
	if idle <= 0 {
		return true
	}
	seen := c.seen.Load()
	if c.pingAt != 0 && seen >= c.pingAt {
		c.pingAt = 0 // anything from the client answers the ping
	}
	switch {
	case c.pingAt != 0 && now-c.pingAt >= idle:
		c.mu.Lock()
		if !c.closed {
			w.s.stats.idleCloses.Add(1)
			c.ev.Or(evIdle)
			w.s.notify(c)
		}
		c.mu.Unlock()
		return false
	case c.pingAt == 0 && now-seen >= idle:
		c.mu.Lock()
		r := c.writeLocked(pingFrame, nil, false, w.s.cfg.MaxOutbound)
		// writeSkipped means our Close is already on its way (nothing may
		// follow it): not a broken socket, and the worker is closing.
		if (r == writeFailed || r == writeOverflow) && !c.closed {
			c.ev.Or(evBroken)
			w.s.notify(c)
		}
		c.mu.Unlock()
		c.pingAt = max(now, 1)
		w.s.stats.idlePings.Add(1)
	}
	return true
}

// push sends a periodic push's frame to c: one non-blocking write.
func (w *wheel) push(c *conn, f *Frame, p Policy) {
	s := w.s
	c.mu.Lock()
	if c.opening {
		c.mu.Unlock()
		s.stats.pushesSkipped.Add(1)
		return
	}
	switch c.writeLocked(f.b, nil, p == LatestOnly, s.cfg.MaxOutbound) {
	case writeWritten, writeQueued:
		s.stats.pushes.Add(1)
	case writeSkipped:
		s.stats.pushesSkipped.Add(1)
	case writeOverflow: // a Reliable push past MaxOutbound
		s.stats.overflows.Add(1)
		s.closeLocked(c, ClosePolicyViolation, "")
	case writeFailed:
		if !c.closed {
			// Broken socket: let the connection's worker close it.
			c.ev.Or(evBroken)
			s.notify(c)
		}
	}
	c.mu.Unlock()
}

// Broadcast sends f to every open connection with policy p and returns how
// many it was written or queued to. It is safe from any goroutine (an App
// method included) and allocates nothing; it takes each wheel slot's lock
// in turn, so it delays the wheel by at most one slot's worth of writes.
// A connection is in the set from the end of its upgrade (before OnOpen
// runs, so a broadcast may reach it before what its OnOpen sends); one
// that opens during the call may or may not get f.
func (s *Server) Broadcast(f *Frame, p Policy) int {
	n := 0
	w := s.wheel
	for i := range w.slots {
		sl := &w.slots[i]
		sl.mu.Lock()
		for _, c := range sl.conns {
			c.mu.Lock()
			if s.sendLocked(c, f.b, nil, p, f.n).Sent() {
				n++
			}
			c.mu.Unlock()
		}
		sl.mu.Unlock()
	}
	return n
}

// recordLag keeps how late the last tick ran, and the worst so far.
func (w *wheel) recordLag(lag time.Duration) {
	st := &w.s.stats
	st.tickLagNs.Store(int64(lag))
	for {
		m := st.tickLagMaxNs.Load()
		if int64(lag) <= m || st.tickLagMaxNs.CompareAndSwap(m, int64(lag)) {
			return
		}
	}
}
