package server

import (
	"time"

	"github.com/gobwas/ws"
)

// App is the application: what the server says to its clients. The engine
// calls it; the application never reaches into the engine, it holds Conn
// handles and Frames. See the package doc ("The application") for who
// calls what on which goroutine.
//
// Every method runs on a worker goroutine, the one running that connection,
// so calls for one connection never overlap and arrive in order: OnOpen,
// then OnMessage for each message, then OnClose. A worker serves many
// connections: a method must not block (no network, no disk, no waiting on
// a lock held for long); hand slow work to Conn.Go, which runs it on the
// offload pool in the connection's order, and send from there. An App may
// also implement Drainer (OnDrain). A method that panics closes its connection with 1011
// (Internal Error); the panic is counted and reported through
// Config.OnError as a *PanicError (with the connection and the stack), and
// every other connection carries on.
type App interface {
	// OnOpen is called once per connection, after the upgrade and before
	// any message or periodic push (Config.Pushes). It may send (a
	// greeting) and keep c. The connection is already in the set that
	// Server.Broadcast reaches, so a broadcast from another goroutine may
	// arrive before what OnOpen sends.
	OnOpen(c Conn)

	// OnMessage is called with each whole data message. payload is
	// borrowed: it is valid only until OnMessage returns (it is the
	// worker's read buffer for a message that arrived in one frame, with
	// no copy, or the connection's reassembly buffer for a fragmented one);
	// copy what you keep. A text payload is valid UTF-8.
	OnMessage(c Conn, op Opcode, payload []byte)

	// OnClose is called exactly once for every OnOpen, when the connection
	// stops being open: with the peer's close code when the peer closed
	// (CloseNoStatus for an empty Close), with the code the server sent
	// when it closed (protocol errors, limits, Conn.Close, shutdown's
	// CloseGoingAway), or CloseAbnormal when the connection just ended.
	// From then on every send on c (and Close) reports Closed, but c still
	// reads what the connection carried, whatever the cause (a reset
	// included): Value and RemoteAddr, so that the application can find
	// its state for c. Once OnClose has returned and the connection is
	// gone they are zero.
	OnClose(c Conn, code CloseCode)
}

// Opcode is the type of a data message.
type Opcode uint8

const (
	OpText   Opcode = Opcode(ws.OpText)
	OpBinary Opcode = Opcode(ws.OpBinary)
)

// CloseCode is a WebSocket close status code ([RFC6455 7.4]).
type CloseCode uint16

const (
	CloseNormal          CloseCode = 1000
	CloseGoingAway       CloseCode = 1001
	CloseProtocolError   CloseCode = 1002
	CloseUnsupported     CloseCode = 1003
	CloseNoStatus        CloseCode = 1005 // the peer's Close had no code
	CloseAbnormal        CloseCode = 1006 // the connection ended without a Close
	CloseInvalidPayload  CloseCode = 1007
	ClosePolicyViolation CloseCode = 1008
	CloseTooBig          CloseCode = 1009
	CloseInternalError   CloseCode = 1011
	CloseTryAgainLater   CloseCode = 1013
)

// String is the opcode's name: "text", "binary".
func (op Opcode) String() string {
	switch op {
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	}
	return "opcode(" + itoa(int(op)) + ")"
}

var closeCodeNames = map[CloseCode]string{
	CloseNormal: "normal", CloseGoingAway: "going away", CloseProtocolError: "protocol error",
	CloseUnsupported: "unsupported data", CloseNoStatus: "no status", CloseAbnormal: "abnormal",
	CloseInvalidPayload: "invalid payload", ClosePolicyViolation: "policy violation",
	CloseTooBig: "message too big", CloseInternalError: "internal error", CloseTryAgainLater: "try again later",
}

// String is the code and its name ([RFC6455 7.4.1]): "1000 normal",
// "1006 abnormal"; codes without a name print as the number ("4001").
func (c CloseCode) String() string {
	if name, ok := closeCodeNames[c]; ok {
		return itoa(int(c)) + " " + name
	}
	return itoa(int(c))
}

// Policy says what a send does when the client is not keeping up.
type Policy uint8

const (
	// Reliable frames are never dropped: they wait in the connection's
	// queue up to Config.MaxOutbound (an empty queue always takes one whole
	// frame); a send past that closes the connection with
	// ClosePolicyViolation (1008: the client does not read what it asked
	// for) and reports Closed. Counted in wsmill_outbound_overflows_total.
	Reliable Policy = iota

	// LatestOnly frames are droppable: while the previous LatestOnly frame
	// sent to this connection is still queued, or when the queue is over
	// Config.MaxOutbound, the frame is skipped (Skipped). A slow client
	// gets the latest state when it catches up, never a backlog. The
	// demo's time push is one.
	LatestOnly
)

// SendResult says what a send did.
type SendResult uint8

const (
	Written SendResult = iota // the kernel took the whole frame
	Queued                    // the frame (or its rest) waits in the connection's queue
	Skipped                   // LatestOnly: not sent, the client is behind
	Closed                    // not sent: the connection is closed or closing, or this send closed it
)

var sendResultNames = [...]string{"written", "queued", "skipped", "closed"}

func (r SendResult) String() string { return sendResultNames[r] }

// Sent reports whether the frame was written or queued.
func (r SendResult) Sent() bool { return r <= Queued }

// Frame is a prepared frame: header and payload encoded once, sent to any
// number of connections without a copy (unless the kernel takes only part
// of it: then the rest is copied into that connection's queue). A Frame is
// immutable and safe to use from any goroutine, as often as you like.
// With Config.Deflate, the first send to a connection that negotiated
// permessage-deflate compresses it (when it has Config.DeflateMin bytes or
// more) and every later one shares that compressed form.
type Frame struct {
	b []byte // header and payload
	n int    // payload bytes
	z frameZ // the compressed frame, made on first need (deflate.go)
}

// NewFrame encodes a final, unmasked data frame carrying a copy of payload.
func NewFrame(op Opcode, payload []byte) *Frame {
	var hb [ws.MaxHeaderSize]byte
	h := putHeader(&hb, ws.OpCode(op), len(payload))
	b := make([]byte, len(h)+len(payload))
	copy(b, h)
	copy(b[len(h):], payload)
	return &Frame{b: b, n: len(payload)}
}

// Len is the frame's size on the wire.
func (f *Frame) Len() int { return len(f.b) }

// Push is a frame sent to every open connection once per
// Config.PushInterval by the timing wheel. The wheel visits each connection
// at its own point in the interval, so the sends of N connections are
// spread evenly instead of all at once; no timer or goroutine exists per
// connection.
type Push struct {
	// Frame returns the frame to send at now. The wheel calls it once per
	// tick (every PushInterval/slots, 10 ms at most) on its own goroutine
	// and sends the result to the connections of that tick; it must be
	// quick and not block. Return the same *Frame for as long as the
	// content is unchanged (the demo builds its time frame once a second);
	// nil sends nothing this tick.
	Frame func(now time.Time) *Frame

	// Policy is usually LatestOnly: a client that is behind skips a push
	// rather than queueing them up.
	Policy Policy
}
