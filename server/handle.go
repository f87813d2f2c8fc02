package server

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Conn is a handle to one connection: three words, copied by value, safe to
// keep and to use from any goroutine for as long as you like. It names the
// connection, not the descriptor number: once the connection is gone (and
// even after the kernel has given its number to a new client), every
// operation reports Closed or returns zero values and never reaches
// another client. The conn struct's generation makes that work: it changes
// each time the struct is reused, under the same lock as the writes.
//
// The zero Conn is closed. Conn is comparable: two handles are equal when
// they name the same connection, so it serves as a map key (a set of
// members, a connection's state in your own table) for as long as you
// keep it.
type Conn struct {
	s   *Server
	c   *conn
	gen uint32
}

// Server is the server the connection belongs to (nil for the zero Conn):
// an App reaches Broadcast and the topics through it, with no field to set
// after New.
func (h Conn) Server() *Server { return h.s }

// lock takes h's conn lock when h still names the live connection and
// reports whether it did; the caller then unlocks. Sends take it.
func (h Conn) lock() bool {
	if !h.lockGen() {
		return false
	}
	if !h.c.closed {
		return true
	}
	h.c.mu.Unlock()
	return false
}

// lockGen takes h's conn lock when h names the connection, live or being
// closed (its descriptor may be gone, OnClose may be running), and reports
// whether it did. What the connection carried (value, address) stays
// readable through it until detach clears it after OnClose; another
// client's, once the struct is reused, never (the generation differs).
func (h Conn) lockGen() bool {
	if h.c == nil {
		return false
	}
	h.c.mu.Lock()
	if h.c.gen == h.gen {
		return true
	}
	h.c.mu.Unlock()
	return false
}

// Send sends one final data frame carrying payload (which is not retained:
// what the kernel does not take at once is copied into the queue).
func (h Conn) Send(op Opcode, payload []byte, p Policy) SendResult {
	if h.c != nil {
		// An echo of the payload OnMessage borrows: one write(2). (c.fd
		// never changes: the struct belongs to that descriptor number.)
		// frameInPlace succeeding proves this is the worker's goroutine, in
		// OnMessage: its batch state is ours to read.
		w := h.s.owner(h.c.fd)
		if f, ok := w.frameInPlace(ws.OpCode(op), payload); ok {
			// On the worker's goroutine: c.deflate is its to read.
			if !h.c.deflate || len(payload) < h.s.cfg.DeflateMin {
				return h.send(f, nil, p, len(payload), w.corkConn == h.c && p == Reliable)
			}
		}
	}
	if !h.lock() {
		return Closed
	}
	var r SendResult
	if h.c.deflate {
		r = h.s.sendDeflateLocked(h.c, ws.OpCode(op), payload, p)
	} else {
		var hb [ws.MaxHeaderSize]byte
		r = h.s.sendLocked(h.c, putHeader(&hb, ws.OpCode(op), len(payload)), payload, p, len(payload), false)
	}
	h.c.mu.Unlock()
	return r
}

// SendFrame sends a prepared frame: to a connection that negotiated
// permessage-deflate, its compressed form (made once per frame, see Frame).
func (h Conn) SendFrame(f *Frame, p Policy) SendResult {
	if !h.lock() {
		return Closed
	}
	r := h.s.sendLocked(h.c, h.s.wire(h.c, f), nil, p, f.n, false)
	h.c.mu.Unlock()
	return r
}

// send sends the frame a+b, whose payload is n bytes; gather: it is an
// echo of the batch the worker is handling (see gatherLocked).
func (h Conn) send(a, b []byte, p Policy, n int, gather bool) SendResult {
	if !h.lock() {
		return Closed
	}
	r := h.s.sendLocked(h.c, a, b, p, n, gather)
	h.c.mu.Unlock()
	return r
}

// Close sends a Close frame with code and reason (at most 123 bytes of
// UTF-8; longer is cut at a rune boundary) and starts the closing
// handshake: nothing more is sent on c, OnClose follows with code, and the
// connection ends when the peer answers or after Config.CloseTimeout. It
// reports Closed if c was already closed or closing.
func (h Conn) Close(code CloseCode, reason string) SendResult {
	if !h.lock() {
		return Closed
	}
	r := h.s.closeLocked(h.c, code, reason)
	h.c.mu.Unlock()
	return r
}

// Value is what Config.OnUpgrade attached to the connection (nil when
// none). It stays readable in OnClose, whatever ended the connection, and
// is nil once OnClose has returned and the connection is gone.
func (h Conn) Value() any {
	if !h.lockGen() {
		return nil
	}
	var v any
	if h.c.ext != nil {
		v = h.c.ext.value
	}
	h.c.mu.Unlock()
	return v
}

// Pending is the number of bytes waiting in the connection's outbound queue
// (0 once it is gone).
func (h Conn) Pending() int {
	if !h.lock() {
		return 0
	}
	n := h.c.pending()
	h.c.mu.Unlock()
	return n
}

// RemoteAddr is the client's address, as accept(2) gave it: an IPv4
// client of a dual-stack listener has its IPv4-mapped IPv6 address (Unmap
// it to compare with IPv4 addresses), and an IPv6 zone is not kept. Like
// Value it stays readable in OnClose, even after a reset, and is the zero
// AddrPort once the connection is gone.
func (h Conn) RemoteAddr() netip.AddrPort {
	if !h.lockGen() {
		return netip.AddrPort{}
	}
	a := h.c.remoteAddr()
	h.c.mu.Unlock()
	return a
}

// remoteAddr is c's peer address. Caller holds c.mu, or is the worker
// running c (which alone writes it after register).
func (c *conn) remoteAddr() netip.AddrPort {
	switch c.peerFam {
	case 4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(c.peerIP[:4])), c.peerPort)
	case 6:
		return netip.AddrPortFrom(netip.AddrFrom16(c.peerIP), c.peerPort)
	}
	return netip.AddrPort{}
}

// sendLocked writes the data frame a+b (n payload bytes) to c under c.mu
// with the send policy.
func (s *Server) sendLocked(c *conn, a, b []byte, p Policy, n int, gather bool) SendResult {
	var r writeResult
	if gather {
		r = c.gatherLocked(a, b, s.cfg.MaxOutbound)
	} else {
		r = c.writeLocked(a, b, p == LatestOnly, s.cfg.MaxOutbound)
	}
	s.drained(c)
	switch r {
	case writeWritten:
		s.stats.countOut(c.fd, n, a[0]&rsv1 != 0)
		return Written
	case writeQueued:
		s.stats.countOut(c.fd, n, a[0]&rsv1 != 0)
		return Queued
	case writeSkipped:
		if c.closeSent {
			return Closed
		}
		return Skipped
	case writeOverflow:
		// The client does not read what it asked for: close it with 1008.
		// The Close frame goes behind what is queued, past the limit
		// (it is tiny, and the queue is bounded by the close timeout).
		s.stats.overflows.Add(1)
		s.closeLocked(c, ClosePolicyViolation, "")
		return Closed
	}
	// A broken socket: the worker running c closes it.
	if !c.closed {
		c.ev.Or(evBroken)
		s.notify(c)
	}
	return Closed
}

// closeLocked queues a Close frame and asks c's worker to enter the closing
// phase (evClose); OnClose reports code. Caller holds c.mu.
func (s *Server) closeLocked(c *conn, code CloseCode, reason string) SendResult {
	if c.closeSent || c.closed {
		return Closed
	}
	var body [125]byte
	binary.BigEndian.PutUint16(body[:], uint16(code))
	n := 2 + copy(body[2:], reason[:utf8Prefix(reason, 123)])
	var hb [ws.MaxHeaderSize]byte
	hdr := putHeader(&hb, ws.OpClose, n)
	// No limit: the Close frame always goes, behind what is queued.
	r := c.writeLocked(hdr, body[:n], false, 1<<31-1)
	if r != writeWritten && r != writeQueued {
		c.ev.Or(evBroken)
		s.notify(c)
		return Closed
	}
	c.closeSent, c.closeCode = true, uint16(code)
	s.stats.closesOut[closeBucket(ws.StatusCode(code))].Add(1)
	c.ev.Or(evClose)
	s.notify(c)
	return Queued
}

// utf8Prefix is the length of the longest prefix of s of at most n bytes
// that ends at a rune boundary.
func utf8Prefix(s string, n int) int {
	if len(s) <= n {
		return len(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// Request is what Config.OnUpgrade sees of an upgrade request: the request
// target and the header fields, straight from the bytes received (no copy,
// no map). Everything it returns is borrowed: valid only during OnUpgrade.
type Request struct {
	target []byte // request-target of the request line
	header []byte // the header field lines, CRLF-separated

	// What OnUpgrade asked for (subprotocol.go).
	protocol string       // SelectProtocol's choice, "" when none
	hdrs     [8][2]string // AddHeader's fields
	nhdr     int
	refusing bool // OnUpgrade refused: the response is no 101
}

// Path is the request path ("/ws" for "GET /ws?room=1 HTTP/1.1").
func (r *Request) Path() []byte {
	if i := bytes.IndexByte(r.target, '?'); i >= 0 {
		return r.target[:i]
	}
	return r.target
}

// Query is the raw query, without the '?' ("room=1"), or nil.
func (r *Request) Query() []byte {
	if i := bytes.IndexByte(r.target, '?'); i >= 0 {
		return r.target[i+1:]
	}
	return nil
}

// Header returns the value of the first header field named name (ASCII
// case-insensitive), without surrounding whitespace, or nil when absent.
func (r *Request) Header(name string) []byte {
	rest := r.header
	for len(rest) > 0 {
		var line []byte
		line, rest = nextLine(rest)
		colon := bytes.IndexByte(line, ':')
		if colon == len(name) && asciiEqualFold(line[:colon], name) {
			return bytes.TrimSpace(line[colon+1:])
		}
	}
	return nil
}

func asciiEqualFold(b []byte, s string) bool {
	for i := range b {
		x, y := b[i]|0x20, s[i]|0x20
		if x != y || (x < 'a' || x > 'z') && b[i] != s[i] {
			return false
		}
	}
	return true
}
