package server

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// wheel is the single timing wheel: one clock that drives the application's
// periodic pushes (Config.Pushes) to every open connection once per
// PushInterval, spread evenly over the interval, the idle checks, and the
// handshake and close deadlines. The clock is one goroutine; the writes of
// a tick are made by the workers, each for its own connections, so pushes
// use every core and are never reordered with a connection's other frames
// (all go under its lock).
//
// Layout: every worker has n slots, each covering tick = PushInterval/n.
// Time is cut into ticks from the server's epoch: tick t is
// [t·tick, (t+1)·tick) on Server.now, is due at its end, and visits slot
// t mod n of every worker. A connection is put in one slot of its worker
// when it opens and stays there until it closes. Consecutive opens step
// through the slots by a stride coprime with n (about 0.38 n): every n
// opens fill each slot once, so slots stay balanced, and a few
// connections are spread over the whole interval instead of filling its
// first slots. When ticks fall due the wheel goroutine builds their
// frames and announces them to every worker (tickTarget, then a Wake for
// a worker with a connection in one of their slots); each worker pushes
// those slots on its own goroutine, between events. A connection is
// visited once per revolution, i.e. once per PushInterval, and the pushes
// of N connections are spread as N/n per tick over all workers instead of
// N at once on one core.
//
// The wheel sleeps until the next thing to do: the next tick whose slot
// holds a connection in some worker, or the earliest handshake or close
// deadline (the heads of the two lists, rounded up to wheelTick); with
// neither it sleeps until woken. planned publishes that instant; whoever
// adds work due before it kicks the wheel to plan again: wheel.add for a
// slot that comes round earlier, deadlineList.push for a deadline on an
// empty list (a list's later members are due after its head). While
// planning, planned is wakeNever, so any work added meanwhile kicks.
//
// Invariants:
//   - A conn is in a slot iff it is open (phaseOpen) and its slot field is
//     its index (-1 otherwise); slot membership changes only under the slot's
//     lock, on the conn's worker (and in stop, after the workers). Workers
//     remove a conn before it leaves phaseOpen.
//   - Every wake-up that announces ticks asks each Push for its frame
//     once and publishes it (frames, atomic) before the announcement: every
//     push of those ticks shares the one frame; a partial write copies the
//     rest into the connection's queue, so no connection keeps a reference
//     to it.
//   - Ticks are announced in order (cursor, every worker's tickTarget) and a
//     worker pushes each announced tick's slot once, in order; a worker more
//     than a revolution behind skips ahead: no connection is pushed twice
//     within one revolution of ticks. A connection's first visit is its
//     slot's first tick that had not begun when it opened (wheelSlot.from),
//     even if the wheel, asleep, announces an earlier tick of that slot
//     only after the open.
//   - No lost wake-up: the wheel stores wakeNever, drains kick, then scans
//     the slots and the list heads and stores the planned instant; an adder
//     makes its work visible (slot or list, under its lock), then loads
//     planned. Either the scan sees the work or the adder sees wakeNever or
//     the new plan, and kicks if its work is due first; a plan made later
//     starts from a cursor past the adder's clock, so its one revolution
//     covers the adder's tick. add loads its worker's tickTarget after
//     filling the slot: a tick it takes for unannounced is announced after
//     the slot is filled, and announce's scan sees it.
//   - Adding a conn costs, beyond its slot lock, two atomic loads
//     (tickTarget, planned) and a store (from, into an empty slot); the
//     first deadline on an empty list one load (planned); either sends on
//     kick, without blocking, only when the wheel must plan again. The
//     wheel wakes only the workers with a connection in the ticks it
//     announces.
//   - Nothing in a tick allocates, sleeps or blocks on a socket: a push is
//     one non-blocking write under the conn's lock.
type wheel struct {
	s      *Server
	tick   time.Duration
	n      int                     // slots per worker
	stride int                     // how far add moves a worker's slot cursor; coprime with n
	frames []atomic.Pointer[Frame] // this tick's frame of each Config.Pushes entry

	// planned is when run wakes next on its own (Server.now in ns), or
	// wakeNever while it plans or has nothing planned; kick (capacity 1)
	// wakes it to plan again. See wakeFor.
	planned atomic.Int64
	kick    chan struct{}
	cursor  int64 // ticks before cursor are announced (run's goroutine only)

	wakeups atomic.Int64 // times run woke up (read by tests)

	stop chan struct{}
	done chan struct{}
}

// wakeNever is planned while the wheel has no instant to wake at.
const wakeNever = math.MaxInt64

type wheelSlot struct {
	mu    sync.Mutex
	conns []*conn
	// from is the first tick that visits the slot: set by add when it
	// fills an empty slot, to the slot's next tick after the open, so that
	// a tick the wheel slept through (the slot was empty then) does not
	// push a connection that opened after it. Written by the owner worker,
	// read by it and by the wheel, which may see it late and wake the
	// worker for nothing, never too early.
	from atomic.Int64
	// n is len(conns), written under mu, read without it by Broadcast and
	// the wheel to pass empty slots without taking their locks: at a long
	// PushInterval a worker has up to 65,536 slots, mostly empty with few
	// connections.
	n atomic.Int32
	_ [20]byte // keep neighbouring slot locks off one cache line
}

// busyAt reports whether tick t has a connection to visit in the slot.
func (s *wheelSlot) busyAt(t int64) bool { return s.n.Load() != 0 && t >= s.from.Load() }

// put adds c to the slot, at index c.pos. Caller holds s.mu.
func (s *wheelSlot) put(c *conn) {
	c.pos = int32(len(s.conns))
	s.conns = append(s.conns, c)
	s.n.Store(int32(len(s.conns)))
}

// wheelTick is the target slot width, and the grid deadlines are rounded up
// to: fine enough for their precision, coarse enough that a busy server's
// wheel wakes at most about 100 times a second.
const wheelTick = 10 * time.Millisecond

// wheelCarve is the room a slot gets when it takes its first connection,
// carved from its worker's current block of wheelBlock entries (8 KiB):
// a worker's slots hold nothing until connections arrive, and adding a
// connection allocates only once per wheelBlock/wheelCarve slots filled
// for the first time, or when a slot outgrows its room (append).
const (
	wheelCarve = 2
	wheelBlock = 1024
)

func newWheel(s *Server, interval time.Duration) *wheel {
	n := int(min(max(interval/wheelTick, 1), 1<<16))
	wh := &wheel{
		s:      s,
		tick:   interval / time.Duration(n),
		n:      n,
		stride: slotStride(n),
		frames: make([]atomic.Pointer[Frame], len(s.cfg.Pushes)),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	wh.planned.Store(wakeNever)
	return wh
}

// slotStride is the step between the slots of consecutive opens: the
// integer nearest n/φ² (about 0.38 n, whose multiples mod n stay far
// apart) that is coprime with n, so n steps visit every slot once.
func slotStride(n int) int {
	if n <= 2 {
		return 1 % n
	}
	g := int(float64(n)*0.3819660112501051 + 0.5)
	for d := 0; ; d++ {
		if k := g - d; k >= 1 && gcd(k, n) == 1 {
			return k
		}
		if k := g + d; gcd(k, n) == 1 {
			return k
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// due is when tick t falls due: at its end.
func (wh *wheel) due(t int64) time.Duration { return time.Duration(t+1) * wh.tick }

// wakeFor kicks the wheel if work due at at comes before its plan. Safe
// from any goroutine; never blocks.
func (wh *wheel) wakeFor(at time.Duration) {
	if int64(at) < wh.planned.Load() {
		select {
		case wh.kick <- struct{}{}:
		default: // a kick is pending
		}
	}
}

// deadlineWake is when the wheel wakes for a deadline d: rounded up to
// wheelTick, so deadlines close together expire in one wake-up.
func deadlineWake(d time.Duration) time.Duration {
	return (d + wheelTick - 1) / wheelTick * wheelTick
}

// initSlots makes the worker's slots, empty: a slot's entries come from
// room, when it takes its first connection. The stride of add keeps the
// slots within one of each other, so after the first revolution of opens a
// slot rarely outgrows its room and adding a connection does not allocate;
// past it a slot grows by append. What a Server holds for its wheel at
// start is the slots themselves (n × 64 B per worker, from PushInterval),
// not a share of MaxConns or of the open-file limit.
func (w *worker) initSlots() {
	w.slots = make([]wheelSlot, w.s.wheel.n)
}

// room returns storage for a slot's first wheelCarve connections, carved
// from the worker's current block. Owner goroutine only (add).
func (w *worker) room() []*conn {
	if len(w.block) < wheelCarve {
		w.block = make([]*conn, wheelBlock)
	}
	r := w.block[:0:wheelCarve]
	w.block = w.block[wheelCarve:]
	return r
}

// add puts c in the next slot of its worker and, if that slot comes round
// before the wheel plans to wake, wakes it. Called by c's worker.
func (wh *wheel) add(c *conn) {
	w := wh.s.owner(c.fd)
	i := w.nextSlot
	if w.nextSlot += wh.stride; w.nextSlot >= len(w.slots) {
		w.nextSlot -= len(w.slots)
	}
	s := &w.slots[i]
	var r []*conn
	if cap(s.conns) == 0 {
		r = w.room() // before the lock: slot locks guard only conns
	}
	s.mu.Lock()
	if r != nil {
		s.conns = r
	}
	c.slot = int32(i)
	empty := len(s.conns) == 0
	s.put(c)
	s.mu.Unlock()
	// The slot's next tick: the first neither announced to this worker
	// (loaded after the put: see the wheel's invariants) nor begun (the
	// turn's clock).
	n := int64(wh.n)
	t := max(w.tickTarget.Load(), int64(w.turnAt/wh.tick))
	t += (int64(i) - t%n + n) % n
	if empty {
		s.from.Store(t)
	}
	wh.wakeFor(wh.due(t))
}

func (wh *wheel) remove(c *conn) {
	if c.slot < 0 {
		return
	}
	s := &wh.s.owner(c.fd).slots[c.slot]
	s.mu.Lock()
	last := len(s.conns) - 1
	moved := s.conns[last]
	s.conns[c.pos] = moved
	moved.pos = c.pos
	s.conns[last] = nil
	s.conns = s.conns[:last]
	s.n.Store(int32(last))
	c.slot, c.pos = -1, 0
	s.mu.Unlock()
}

// buildFrames asks every Push for this tick's frame.
func (wh *wheel) buildFrames(now time.Time) {
	for i, p := range wh.s.cfg.Pushes {
		wh.frames[i].Store(wh.callFrame(p, now))
	}
}

// callFrame runs one Push.Frame; a panic is counted and reported, and
// sends nothing this tick.
func (wh *wheel) callFrame(p Push, now time.Time) (f *Frame) {
	var panicked bool
	defer wh.s.recoverApp("Push.Frame", nil, &panicked)
	return p.Frame(now)
}

func (wh *wheel) run() {
	defer close(wh.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		wh.planned.Store(wakeNever) // whoever adds work from here on kicks
		select {
		case <-wh.kick: // its work is visible to the scans below
		default:
		}
		wall := time.Now()
		now := wall.Sub(wh.s.epoch) // Server.now, from the same reading
		wh.announce(now, wall)
		wh.s.expireDeadlines(now)
		at := wh.plan()
		wh.planned.Store(int64(at))
		var fired <-chan time.Time
		if at != wakeNever {
			timer.Reset(at - wh.s.now())
			fired = timer.C
		}
		select {
		case <-fired:
			wh.recordLag(wh.s.now() - at)
		case <-wh.kick:
			timer.Stop()
		case <-wh.stop:
			return
		}
		wh.wakeups.Add(1)
	}
}

// announce builds the frames of the ticks due by now and announces them to
// every worker, waking those with a connection in one of their slots.
func (wh *wheel) announce(now time.Duration, wall time.Time) {
	s := wh.s
	t := int64(now / wh.tick) // ticks before t are due
	if t <= wh.cursor {
		return
	}
	from := max(wh.cursor, t-int64(wh.n)) // a revolution at most
	wh.cursor = t
	wh.buildFrames(wall)
	for _, w := range s.workers {
		w.tickTarget.Store(t)
	}
	// After the stores: a conn added with an older target is seen here.
	if s.open.Load() == 0 {
		return
	}
	for _, w := range s.workers {
		if w.nextBusy(from, t) < t {
			if err := w.poll.Wake(); err != nil {
				s.cfg.OnError(err)
			}
		}
	}
}

// plan returns when the wheel must wake next: the first unannounced tick
// with a connection in its slot of some worker, or the earliest deadline,
// whichever comes first; wakeNever when there is neither.
func (wh *wheel) plan() time.Duration {
	at := time.Duration(wakeNever)
	s := wh.s
	if s.open.Load() > 0 {
		end := wh.cursor + int64(wh.n)
		next := end
		for _, w := range s.workers {
			next = w.nextBusy(wh.cursor, next)
		}
		if next < end {
			at = wh.due(next)
		}
	}
	for _, l := range [...]*deadlineList{&s.hsList, &s.clList} {
		if d, ok := l.first(); ok {
			at = min(at, deadlineWake(d))
		}
	}
	return at
}

// nextBusy returns the first tick in [from, to) whose slot holds a
// connection of w, or to. Slot counts are atomic: no lock is taken.
func (w *worker) nextBusy(from, to int64) int64 {
	n := int64(len(w.slots))
	i := from % n
	for t := from; t < to; t++ {
		if w.slots[i].busyAt(t) {
			return t
		}
		if i++; i == n {
			i = 0
		}
	}
	return to
}

// runTicks pushes the slots of the ticks announced since the last call, on
// the worker's goroutine.
func (w *worker) runTicks() {
	target := w.tickTarget.Load()
	if target == w.tickDone {
		return
	}
	n := int64(len(w.slots))
	if target-w.tickDone > n {
		w.tickDone = target - n
	}
	now := int64(w.s.now() / time.Millisecond)
	for ; w.tickDone < target; w.tickDone++ {
		if sl := &w.slots[w.tickDone%n]; sl.busyAt(w.tickDone) {
			w.s.wheel.pushSlot(sl, now)
		}
	}
}

// pushSlot checks every connection of a slot for idleness and sends it the
// tick's frames.
func (wh *wheel) pushSlot(s *wheelSlot, now int64) {
	pushes := wh.s.cfg.Pushes
	s.mu.Lock()
	for _, c := range s.conns {
		if !wh.checkIdle(c, now) {
			continue
		}
		for i := range wh.frames {
			if f := wh.frames[i].Load(); f != nil {
				wh.push(c, f, pushes[i].Policy)
			}
		}
	}
	s.mu.Unlock()
}

var pingFrame = []byte{0x89, 0x00} // FIN + ping, empty payload

// checkIdle pings a connection that has been silent for IdleTimeout and asks
// its worker to close it when it stays silent for another IdleTimeout. It
// reports whether c is still worth a push. Called with c's slot locked.
func (wh *wheel) checkIdle(c *conn, now int64) bool {
	idle := wh.s.cfg.IdleTimeout.Milliseconds()
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
			wh.s.stats.idleCloses.Add(1)
			c.ev.Or(evIdle)
			wh.s.notify(c)
		}
		c.mu.Unlock()
		return false
	case c.pingAt == 0 && now-seen >= idle:
		c.mu.Lock()
		r := c.writeLocked(pingFrame, nil, false, wh.s.cfg.MaxOutbound)
		wh.s.drained(c)
		// writeSkipped means our Close is already on its way (nothing may
		// follow it): not a broken socket, and the worker is closing.
		if (r == writeFailed || r == writeOverflow) && !c.closed {
			c.ev.Or(evBroken)
			wh.s.notify(c)
		}
		c.mu.Unlock()
		c.pingAt = max(now, 1)
		wh.s.stats.idlePings.Add(1)
	}
	return true
}

// push sends a periodic push's frame to c: one non-blocking write.
func (wh *wheel) push(c *conn, f *Frame, p Policy) {
	s := wh.s
	c.mu.Lock()
	if c.opening {
		c.mu.Unlock()
		s.stats.pushesSkipped.Add(1)
		return
	}
	if c.ext != nil && c.ext.noPush {
		c.mu.Unlock()
		return
	}
	r := c.writeLocked(s.wire(c, f), nil, p == LatestOnly, s.cfg.MaxOutbound)
	s.drained(c)
	switch r {
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

// Broadcast sends f to every open connection with policy p and says what
// happened at each (FanoutResult: written, queued, skipped, closed). It is
// safe from any goroutine (an App method included) and never blocks on a
// client. Up to broadcastSerial open connections the calling goroutine
// writes them all; past that the workers' shares are split between it and
// the fan-out goroutines (fanout.go), so a broadcast to many connections
// uses every core. Either way it allocates nothing. It takes each wheel
// slot's lock in turn, so it delays a worker's pushes by at most one
// slot's worth of writes. A connection is in the set from the end of its
// upgrade (before OnOpen runs, so a broadcast may reach it before what its
// OnOpen sends); one that opens during the call may or may not get f.
func (s *Server) Broadcast(f *Frame, p Policy) FanoutResult {
	if len(s.workers) == 1 || s.open.Load() <= broadcastSerial {
		var r FanoutResult
		for _, w := range s.workers {
			s.broadcastTo(w, f, p, &r)
		}
		return r
	}
	return s.fanout(nil, f, p, len(s.workers))
}

// broadcastSerial is the size up to which one goroutine broadcasts (or
// publishes). The fan-out goroutines are started once, so going parallel
// costs a channel send and a wake-up; over TCP, where a write also does
// the kernel's sending, sharing the writes from 100 connections on is
// faster to the last one (wire A/B against 2,048 in the README, "Fan-out":
// 0.77x at 100, 0.49x at 250, 0.74x at 2,000) for 8-20% more CPU per
// broadcast. Up to 64 the wake-up is a good part of the whole.
const broadcastSerial = 64

// broadcastTo sends f to the open connections of worker w, adding to r.
func (s *Server) broadcastTo(w *worker, f *Frame, p Policy, r *FanoutResult) {
	for i := range w.slots {
		sl := &w.slots[i]
		if sl.n.Load() == 0 {
			// Empty when we look: a conn added after this is one that
			// opened after the broadcast passed, as in a locked walk.
			continue
		}
		sl.mu.Lock()
		for _, c := range sl.conns {
			c.mu.Lock()
			r.count(s.sendLocked(c, s.wire(c, f), nil, p, f.n, false))
			c.mu.Unlock()
		}
		sl.mu.Unlock()
	}
}

// recordLag keeps how late the last tick ran, and the worst so far.
func (wh *wheel) recordLag(lag time.Duration) {
	st := &wh.s.stats
	st.tickLagNs.Store(int64(lag))
	for {
		m := st.tickLagMaxNs.Load()
		if int64(lag) <= m || st.tickLagMaxNs.CompareAndSwap(m, int64(lag)) {
			return
		}
	}
}
