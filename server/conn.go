package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// conn is the state of one accepted TCP connection. Structs are never freed:
// the table keeps one per descriptor number and reuses it when the kernel
// hands that number out again, with gen incremented (see table.go).
//
// Ownership, by field group:
//
//   - Read state (phase, handshake, header, frame, message fields): owned by
//     the single worker that is running the connection. The scheduling state
//     machine below guarantees at most one worker runs a conn at a time, so
//     these fields need no lock.
//   - Write state (out*, closed): guarded by mu. The owning worker (pong,
//     close, pushes), application sends and broadcasts from any goroutine
//     all write, and mu makes every frame go out whole and in order: frames
//     never interleave on the wire.
//   - Wheel links (slot, pos): guarded by the wheel slot's lock.
//   - Deadline links (dl*): guarded by the deadline list's lock.
//
// Scheduling state machine (field sched):
//
//	idle ──event on the owner's epoll──────────────▶ running ──done──▶ idle
//	idle ──work from elsewhere──▶ queued ──owner drains its queue──▶ running
//	                                              │  ▲
//	                     work from elsewhere,     │  │ owner runs it again
//	                     read budget spent        ▼  │ (requeued for fairness)
//	                                             rerun
//	running ──closes the fd──▶ dead ──table reuses the struct──▶ setup
//	setup ──register has set every field, just before poller.Add──▶ idle
//
// Invariants: only the owner worker (Server.owner: descriptor number mod
// Config.Workers) ever runs a conn, on its own goroutine; a conn is in the
// owner's run queue at most once (only idle→queued and rerun→queued
// enqueue), so the queue never holds more entries than the worker has
// conns; an event that arrives while
// it runs is never lost (running→rerun makes the worker go round again); a
// dead conn drops events until it is reused. A conn in setup is being
// initialised by the acceptor: events only accumulate in ev (an event taken
// for the previous connection on the same number can still be dispatched),
// and register schedules the conn itself if any arrived, once it is idle.
type conn struct {
	// Fields are ordered by size within each group and the groups arranged
	// so that padding stays small: the struct is 256 bytes, a malloc size
	// class (255 bytes of fields; at a million connections every 16 bytes
	// is 16 MB). It was 240 until the peer's address (19 bytes) had to be
	// kept for OnClose; drainArm and permessage-deflate's flag (deflate)
	// took the 2 bytes left. (deflate's other flag, "the open message is
	// compressed", is a value of utf8: such a message is checked only once
	// inflated.)

	fd    int
	gen   uint32 // changes (under mu) each time the struct is reused; see Conn
	sched atomic.Uint32
	ev    atomic.Uint32 // pending poller.Event bits plus internal requests (ev*)

	// Read state, owned by the running worker.
	utf8       uint32    // UTF-8 validator state of the open text message or frame; utf8Deflated: the open message is compressed
	cur        ws.Header // header of the frame in progress
	curGot     int64     // payload bytes of cur received so far
	frame      *[]byte   // pooled buffer for cur's payload, nil when none
	msgLen     int64     // bytes of the open message received so far
	msg        *[]byte   // pooled buffer reassembling a fragmented message
	hs         *[]byte   // buffered handshake bytes (pooled), nil when none
	skip       int64     // closing: payload bytes of the current frame still to skip
	hdr        [ws.MaxHeaderSize]byte
	hsScan     uint16    // offset in hs where the unfinished request line starts
	hsLines    uint8     // request lines completed so far
	hdrN       uint8     // bytes of an incomplete frame header kept in hdr
	inFrame    bool      // cur's header is parsed; its payload is arriving in frame
	msgOp      ws.OpCode // opcode of the open fragmented message, 0 when none
	phase      phase
	registered bool // in the poller (set by the acceptor before any worker sees c)
	readMore   bool // stopped reading early for fairness; bytes may remain
	wrShut     bool // closing: our side is shut down, waiting for the peer's FIN
	peerClosed bool // closing: the peer's Close frame has arrived
	alignedIn  bool // closing: input is at a frame boundary (clean close)

	// Write state, guarded by mu (closed, closeSent, closeCode and
	// peerFam sit before mu only to fill what would be padding).
	closed    bool   // fd is about to be or has been closed: write nothing
	closeSent bool   // our Close frame is written or queued: nothing may follow
	closeCode uint16 // the code of our Close frame, for OnClose
	opening   bool   // in the wheel, OnOpen still running: no periodic push yet
	peerFam   uint8  // 4 or 6: peerIP and peerPort hold the peer's address; 0: none

	// Wheel links, guarded by the slot's lock.
	slot int32 // -1 when not in the wheel
	pos  int32

	mu      sync.Mutex
	ext     *connExt // what only some connections need (nil: none yet); guarded by mu
	outHead int32    // (*out)[outHead:] is pending; < MaxOutbound+MaxMessage+header
	// The peer's address as accept4(2) returned it (IPv4 in peerIP[:4]),
	// guarded by mu: set by register, cleared by detach after OnClose.
	// Kept here because the socket cannot give it back once the peer has
	// reset the connection (getpeername(2): ENOTCONN), and OnClose must
	// still see it.
	peerPort  uint16
	peerIP    [16]byte
	drainArm  bool    // the queue went over half of MaxOutbound: OnDrain when it empties
	deflate   bool    // permessage-deflate negotiated: set by the upgrade, before the conn is reachable
	out       *[]byte // pooled outbound queue
	outTotal  uint64  // bytes ever appended to the queue
	outDone   uint64  // bytes ever flushed from the queue
	latestEnd uint64  // outTotal just after the last queued LatestOnly frame
	bigEnd    uint64  // outTotal just after a frame larger than MaxOutbound

	// Liveness: seen is written by the worker after every read (ms on
	// Server.now, the turn's clock: worker.turnMs); pingAt belongs to the
	// wheel (slot lock).
	seen   atomic.Int64
	pingAt int64 // when the wheel pinged this silent conn; 0 when none pending

	// Deadline list links, guarded by the deadline list's lock.
	dlList     *deadlineList
	dlPrev     *conn
	dlNext     *conn
	dlDeadline time.Duration // on the server's monotonic clock (Server.now)
}

type phase uint8

const (
	phaseFree      phase = iota // fd closed; struct waiting for reuse
	phaseHandshake              // reading the HTTP request
	phaseOpen                   // WebSocket open
	phaseClosing                // our Close frame is sent or queued; draining
)

const (
	schedIdle uint32 = iota
	schedQueued
	schedRunning
	schedRerun
	schedDead
	schedSetup
)

// Internal requests carried in conn.ev above the poller's bits.
const (
	evGoingAway uint32 = 1 << (16 + iota) // shutdown: send Close 1001
	evTimeout                             // a deadline (handshake, close) passed
	evBroken                              // the wheel's write failed: close
	evIdle                                // silent past IdleTimeout after a ping: close 1001
	evClose                               // a Close frame was queued (Conn.Close, overflow): enter closing
	evDrain                               // the queue emptied after drainArm: call OnDrain
)

// connExt holds what only some connections need, made the first time one
// does: 8 bytes in every conn instead of each field in every conn. It
// belongs to one connection: detach drops it once OnClose has returned,
// and a reused struct starts without one. Guarded by conn.mu.
type connExt struct {
	value    any        // what Config.OnUpgrade attached
	topics   []topicRef // the topics c is subscribed to (topic.go)
	off      *offq      // Conn.Go's backlog (offload.go), made at the first Go
	protocol string     // the subprotocol OnUpgrade selected (subprotocol.go)
	noPush   bool       // upgraded on one of Config.Paths: the wheel sends it no Pushes
}

// extLocked returns c's extension, making it if needed. Caller holds mu.
func (c *conn) extLocked() *connExt {
	if c.ext == nil {
		c.ext = new(connExt)
	}
	return c.ext
}

// pending reports the bytes waiting in the outbound queue. Caller holds mu.
func (c *conn) pending() int {
	if c.out == nil {
		return 0
	}
	return len(*c.out) - int(c.outHead)
}
