package server

import (
	"bytes"
	"io"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"

	"github.com/wsmill/wsmill/poller"
)

// readBufSize is the worker's read buffer: one read(2) takes up to this
// much, and every frame that arrives whole inside it is handled in place
// (unmasked and echoed from the same bytes) without a copy.
// It holds a whole frame with a 64 KiB payload (64 KiB + 14 header bytes).
const readBufSize = 64<<10 + 64

// readBudget is how many bytes one turn may read from a connection before
// the worker puts it back in its queue, so one fast sender cannot hold the
// worker while its other connections wait.
const readBudget = 4 * readBufSize

// worker is one event loop: its own epoll instance (poll), whose goroutine
// runs the connections it owns (descriptor number mod Config.Workers)
// inline, in the event callback, with no hand-off to another goroutine.
// Its buffers are its own: nothing here is shared with another goroutine
// except the run queue (q, for work found elsewhere: a deadline, a send's
// close, shutdown), the wheel slots of its connections (slot locks), and
// tickTarget; nothing outlives one call except through the conn's own
// pooled buffers.
type worker struct {
	s    *Server
	id   int
	poll poller.Poller
	q    runQueue // conns of this worker scheduled from elsewhere (or requeued)

	// Wheel: this worker's connections, one slot each (see wheel.go).
	slots      []wheelSlot
	block      []*conn      // room not yet given to a slot (owner goroutine only; see wheel.room)
	nextSlot   int          // add's slot cursor, moved by the wheel's stride (owner goroutine only)
	tickTarget atomic.Int64 // the wheel has announced the ticks before it (numbered from the epoch)
	tickDone   int64        // this worker has pushed the ticks before it (owner goroutine only)

	buf []byte // [0:MaxHeaderSize) headroom for a saved partial header, then the read area

	// The payload OnMessage is borrowing when it lies in buf, right after
	// its own frame header (see lend): lent is its first byte (nil when
	// none), lentOff its offset in buf, lentN its length. Atomic only
	// because Conn.Send compares lent from any goroutine; a match can only
	// come from this worker's goroutine, inside OnMessage.
	lent    atomic.Pointer[byte]
	lentOff int
	lentN   int

	// corkConn is the connection whose batch this worker is handling: a
	// read brought more than one frame, and what the worker sends to it
	// meanwhile (echoes, pongs, a Close) is gathered and leaves in one
	// write(2) at the end of the batch (uncork). nil when none. Only this
	// goroutine reads it (Conn.Send only after frameInPlace proved it runs
	// here).
	corkConn *conn

	lastYield time.Duration // when yield last called runtime.Gosched (Server.now)
	turnAt    time.Duration // when the current turn began (Server.now): the reads' clock
	br        bytes.Reader
	hb        [ws.MaxHeaderSize]byte // header scratch for ReadHeaderBuffer
	oh        [ws.MaxHeaderSize]byte // outgoing header

	// permessage-deflate: the decompressor every compressed message of
	// this worker's connections goes through (made at the first one), and
	// what it reads; deflateOK says the upgrade in progress accepted an
	// offer.
	zr        io.ReadCloser
	zsrc      inflateSrc
	deflateOK bool
	offer     deflateOffer       // the offer being scanned (extensions)
	answer    [1]httphead.Option // the Sec-WebSocket-Extensions answer

	up          ws.Upgrader
	hsrw        handshakeRW
	req         Request    // what Config.OnUpgrade sees, during Upgrade only
	resp        respHeader // writes req's selected subprotocol and added fields
	value       any        // what it attached, until the conn is open
	reserved    bool       // this upgrade took a MaxConns slot
	refused     bool       // Config.OnUpgrade refused this upgrade
	shortDrains bool       // this turn, a short read means the socket is drained

	// st counts this worker's frame-path events. Per worker, so the frame
	// path never bounces a shared cache line between cores; Stats sums them.
	st    workerStats
	short bool // the last read came back short
	gone  bool // the conn was handed off to net/http: not ours any more
}

// newWorker makes worker id and starts its event loop (the poller's
// goroutine).
func newWorker(s *Server, id int) (*worker, error) {
	w := &worker{s: s, id: id, buf: make([]byte, ws.MaxHeaderSize+readBufSize)}
	w.initUpgrader()
	w.initSlots()
	p, err := poller.New(w.onEvent, s.cfg.OnError)
	if err != nil {
		return nil, err
	}
	w.poll = p
	return w, nil
}

// onEvent is the poller's Dispatch: it runs on this worker's goroutine for
// every readiness event of its descriptors, and for Wake.
func (w *worker) onEvent(fd int, ev poller.Event) {
	switch {
	case ev&poller.EventClosed != 0:
		return
	case ev&poller.EventWake != 0:
		w.runQueued()
		w.runTicks()
		w.yield(w.s.now())
		return
	}
	s := w.s
	c := s.table.get(fd) // listening sockets have their own callback (Serve)
	if c == nil {
		return
	}
	w.st.pollEvents.Add(1)
	c.ev.Or(uint32(ev))
	// Run it here and now: this goroutine is the only one that runs this
	// worker's conns. Queued: it is in q and runs at the next drain. Setup:
	// register schedules it. Dead: dropped.
	if c.sched.CompareAndSwap(schedIdle, schedRunning) {
		w.serve(c)
	}
}

// enqueue schedules c (already moved to schedQueued) on this worker from
// any goroutine.
func (w *worker) enqueue(c *conn) {
	w.q.push(c)
	if err := w.poll.Wake(); err != nil {
		w.s.cfg.OnError(err)
	}
}

// runQueued runs the conns that were in the queue when it started; those
// requeued meanwhile wait for the next wake-up, after the events that
// came in between (fairness).
func (w *worker) runQueued() {
	for n := w.q.len(); n > 0; n-- {
		c := w.q.pop()
		if c == nil {
			return
		}
		c.sched.Store(schedRunning)
		w.serve(c)
	}
}

// serve runs c (in schedRunning) until it has nothing left to do, following
// the scheduling state machine documented on conn.
func (w *worker) serve(c *conn) {
	t0 := w.s.now() // monotonic only: one clock read where time.Now takes two
	w.turnAt = t0
	w.turn(c)
	w.st.turns.Add(1)
	t1 := w.s.now()
	w.st.busyNs.Add(int64(t1 - t0))
	w.yield(t1)
}

// turnMs is the current turn's start in ms, the clock of conn.seen: the
// turn's own reading (serve takes it anyway), fresh however long the
// wheel sleeps, for no clock read of its own.
func (w *worker) turnMs() int64 { return int64(w.turnAt / time.Millisecond) }

// yieldEvery is how often a busy worker passes through the scheduler.
const yieldEvery = time.Millisecond

// yield calls runtime.Gosched when the last call is yieldEvery old. The
// worker's goroutine never parks: it runs, or waits in epoll_wait, a
// system call. To the runtime that looks like one goroutine running for
// ever, and its monitor (sysmon) takes the P of a goroutine that has not
// been through the scheduler for 10 ms at once when it is in a system
// call, then keeps polling every 20 µs. Passing through the scheduler
// now and then (about 200 ns) keeps the P with its worker and the
// monitor asleep. See "Processors" in doc.go.
func (w *worker) yield(now time.Duration) {
	if now-w.lastYield >= yieldEvery {
		w.lastYield = now
		runtime.Gosched()
	}
}

func (w *worker) turn(c *conn) {
	if !w.run(c) {
		if w.gone {
			w.gone = false // handed off; already released
			return
		}
		w.s.closeConn(c) // leaves c dead; do not touch it again
		return
	}
	if c.sched.CompareAndSwap(schedRunning, schedIdle) {
		return
	}
	// More work came while we ran (rerun): go to the back of the queue
	// rather than looping, so every connection gets its turn.
	c.sched.Store(schedQueued)
	w.enqueue(c)
}

// run does one turn of work for c: whatever its pending events ask for. It
// returns false when the connection must be closed.
func (w *worker) run(c *conn) bool {
	ev := c.ev.Swap(0)
	if ev&evBroken != 0 {
		return false
	}
	if ev&evTimeout != 0 && (c.phase == phaseHandshake || c.phase == phaseClosing) {
		if c.phase == phaseHandshake {
			w.s.stats.reject(RejectTimeout)
		}
		return false
	}
	if ev&evIdle != 0 && c.phase == phaseOpen && !w.startClose(c, ws.StatusGoingAway, true) {
		return false
	}
	if ev&evClose != 0 && c.phase == phaseOpen {
		w.closeRequested(c)
	}
	if ev&evGoingAway != 0 {
		switch c.phase {
		case phaseHandshake:
			return false
		case phaseOpen:
			if !w.startClose(c, ws.StatusGoingAway, true) {
				return false
			}
		}
	}
	if ev&uint32(poller.EventWrite) != 0 {
		c.mu.Lock()
		ok := c.flushLocked()
		c.mu.Unlock()
		if !ok {
			return false
		}
	}
	if ev&uint32(poller.EventRead|poller.EventHangup) != 0 || c.readMore {
		c.readMore = false
		// A short read proves the socket drained, saving the read(2) that
		// would return EAGAIN, unless the peer's FIN may be waiting too.
		w.shortDrains = ev&uint32(poller.EventHangup) == 0
		if !w.read(c) {
			return false
		}
	}
	if c.phase == phaseClosing {
		return w.finishClosing(c)
	}
	// The queue emptied after it had been over half of MaxOutbound: in
	// this turn's flushes (EventWrite, the end of a batch), or elsewhere
	// (the bit came with ev).
	if c.ev.Load()&evDrain != 0 {
		ev |= c.ev.And(^evDrain)
	}
	if ev&evDrain != 0 && c.phase == phaseOpen && w.s.drainer != nil {
		// A send from another goroutine may have queued again since the
		// flush that emptied it: then the episode goes on, and OnDrain
		// comes when the queue empties after all.
		c.mu.Lock()
		empty := c.pending() == 0
		if !empty && !c.closed {
			c.drainArm = true
		}
		c.mu.Unlock()
		if empty {
			return w.afterApp(c, w.s.callDrain(c))
		}
	}
	return true
}

// read reads from c until the socket is drained (EAGAIN), the budget is
// spent, or the connection must close.
func (w *worker) read(c *conn) bool {
	budget := readBudget
	defer func() {
		if budget < readBudget {
			c.seen.Store(w.turnMs())
		}
	}()
	for budget > 0 {
		var n int
		var ok, again bool
		switch {
		case c.phase == phaseHandshake:
			n, ok, again = w.readHandshake(c)
		case c.phase == phaseClosing:
			n, ok, again = w.readClosing(c)
		case c.inFrame:
			n, ok, again = w.readPayload(c)
		default:
			n, ok, again = w.readFrames(c)
		}
		if !ok {
			return false
		}
		if again {
			return true
		}
		budget -= n
		if w.short {
			return true
		}
	}
	// Bytes may remain: come back after the others had a turn. With
	// edge-triggered epoll no new event would tell us. A pending hang-up
	// must survive too: its edge is spent, and without the bit the next
	// turn would take a short read for "drained" and never read the FIN.
	c.readMore = true
	if !w.shortDrains {
		c.ev.Or(uint32(poller.EventHangup))
	}
	c.sched.CompareAndSwap(schedRunning, schedRerun)
	return true
}

// readFD reads into p for one of the read functions and records whether
// the read came back short (see shortDrains).
func (w *worker) readFD(fd int, p []byte) (int, syscall.Errno) {
	n, errno := readFD(fd, p)
	w.short = w.shortDrains && errno == 0 && n > 0 && n < len(p)
	return n, errno
}

// readOutcome maps a read to: ok=false to close (EOF or error), again=true
// on EAGAIN.
func readOutcome(n int, errno syscall.Errno) (ok, again bool) {
	switch {
	case errno == syscall.EAGAIN:
		return true, true
	case errno != 0, n == 0: // error or EOF
		return false, false
	}
	return true, false
}

// readClosing reads from a connection after our Close frame. Data frames
// are skipped unread; the peer's Close frame sets peerClosed, its FIN (read
// returns 0) ends the connection. After a protocol failure the stream is no
// longer at a frame boundary and everything is discarded.
func (w *worker) readClosing(c *conn) (int, bool, bool) {
	k := int(c.hdrN)
	head := ws.MaxHeaderSize - k
	copy(w.buf[head:ws.MaxHeaderSize], c.hdr[:k])
	n, errno := w.readFD(c.fd, w.buf[ws.MaxHeaderSize:])
	ok, again := readOutcome(n, errno)
	if !ok || again || !c.alignedIn || c.peerClosed {
		return n, ok, again
	}
	c.hdrN = 0
	w.scanClosing(c, w.buf[head:ws.MaxHeaderSize+n])
	return n, true, false
}

// scanClosing goes over input received after our Close, on a clean close,
// looking for the peer's Close frame; data frames are skipped.
func (w *worker) scanClosing(c *conn, data []byte) {
	if !c.alignedIn || c.peerClosed {
		return
	}
	for len(data) > 0 {
		if c.skip > 0 {
			k := int(min(c.skip, int64(len(data))))
			data, c.skip = data[k:], c.skip-int64(k)
			continue
		}
		w.br.Reset(data)
		h, err := ws.ReadHeaderBuffer(&w.br, w.hb[:])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			c.hdrN = uint8(copy(c.hdr[:], data))
			return
		}
		if err != nil || ws.CheckHeader(h, ws.StateServerSide|ws.StateFragmented) == ws.ErrProtocolOpCodeReserved {
			c.alignedIn = false
			return
		}
		if h.OpCode == ws.OpClose {
			c.peerClosed = true
			return
		}
		data, c.skip = data[len(data)-w.br.Len():], h.Length
	}
}

// finishClosing ends a turn in phaseClosing. With our Close frame out and
// the peer's Close received, the server closes the TCP connection at once
// ([RFC6455 7.1.1]: the server SHOULD close it first) if the kernel has
// delivered everything; if it still holds bytes for the peer (our Close
// among them), the server half-closes and closes at the peer's FIN, or
// resets at the close timeout (closeConn), so that no orphaned socket is
// left holding them. With our Close out but no answer yet, it half-closes:
// the FIN follows the Close frame, and the peer's Close, its FIN, or the
// close timeout ends it. Closing outright while the peer may still be
// sending would answer with a RST, which can destroy our Close frame in
// flight. It returns false to close now.
func (w *worker) finishClosing(c *conn) bool {
	c.mu.Lock()
	empty := c.pending() == 0
	c.mu.Unlock()
	switch {
	case !empty:
		return true // EventWrite brings us back when the queue drains
	case c.peerClosed && w.s.unsent(c.fd) == 0:
		return false
	case !c.wrShut:
		c.wrShut = true
		return syscall.Shutdown(c.fd, syscall.SHUT_WR) == nil
	}
	return true
}

// resetRead returns every read-side buffer to its pool (and the held ones'
// bytes to the budget) and clears the frame and message state. Called by
// the worker that owns c.
func (s *Server) resetRead(c *conn) {
	putBuf(c.hs)
	s.dropBuf(c.frame)
	s.dropBuf(c.msg)
	c.hs, c.frame, c.msg = nil, nil, nil
	c.hdrN, c.inFrame, c.curGot = 0, false, 0
	c.msgOp, c.msgLen, c.utf8 = 0, 0, 0
	c.wrShut, c.readMore = false, false
	c.peerClosed, c.alignedIn, c.skip = false, false, 0
	c.hsScan, c.hsLines = 0, 0
}
