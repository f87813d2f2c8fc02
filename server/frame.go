package server

import (
	"encoding/binary"
	"io"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// The frame path. A worker reads into its own buffer; every frame that lies
// whole in the buffer is unmasked in place and handed from there to the
// application (App.OnMessage borrows it: no copy). Only an incomplete frame is kept
// across reads: up to 13 header bytes in conn.hdr, or the payload received
// so far in a held buffer (held.go) that grows with the bytes that arrive,
// up to the declared length (checked against MaxMessage first).

// readFrames reads once into the worker buffer and handles what arrived.
func (w *worker) readFrames(c *conn) (int, bool, bool) {
	k := int(c.hdrN)
	head := ws.MaxHeaderSize - k
	copy(w.buf[head:ws.MaxHeaderSize], c.hdr[:k])
	n, errno := w.readFD(c.fd, w.buf[ws.MaxHeaderSize:])
	ok, again := readOutcome(n, errno)
	if !ok || again {
		return n, ok, again
	}
	c.hdrN = 0
	ok = w.parseFrames(c, w.buf[head:ws.MaxHeaderSize+n])
	return n, w.uncork(c, ok), false
}

// readPayload reads more of an incomplete frame. len(*c.frame) == c.curGot:
// the buffer holds exactly the payload received so far. When it has room
// for a full read the socket is read straight into it; otherwise the read
// goes to the worker's buffer and the held buffer grows (at least doubling,
// never past the declared length) by what actually arrived.
func (w *worker) readPayload(c *conn) (int, bool, bool) {
	buf := *c.frame
	want := c.cur.Length - c.curGot
	room := int64(cap(buf) - len(buf))
	direct := room >= min(want, readBufSize)
	var dst []byte
	if direct {
		dst = buf[len(buf) : int64(len(buf))+min(room, want)]
	} else {
		dst = w.buf[ws.MaxHeaderSize : ws.MaxHeaderSize+min(want, readBufSize)]
	}
	n, errno := w.readFD(c.fd, dst)
	ok, again := readOutcome(n, errno)
	if !ok || again {
		return n, ok, again
	}
	if !direct {
		need := min(max(2*cap(buf), len(buf)+n), int(c.cur.Length))
		p, ok := w.s.holdBuf(c.frame, need)
		if !ok {
			c.curGot += int64(n) // discarded: refuse skips the rest
			return n, w.refuse(c), false
		}
		c.frame = p
		*c.frame = append(*c.frame, dst[:n]...)
	} else {
		*c.frame = buf[:len(buf)+n]
	}
	if !w.payloadChunk(c, (*c.frame)[c.curGot:c.curGot+int64(n)]) {
		return n, w.fail(c, ws.StatusInvalidFramePayloadData), false
	}
	if c.curGot < c.cur.Length {
		return n, true, false
	}
	frame := c.frame
	c.frame, c.inFrame = nil, false
	ok = w.handleFrame(c, c.cur, *frame, true)
	w.s.dropBuf(frame)
	return n, ok, false
}

// payloadChunk unmasks newly arrived payload bytes of c.cur and, in a text
// message, validates them at once, so invalid UTF-8 fails the connection
// without waiting for the rest of the frame. It reports false on invalid
// UTF-8.
func (w *worker) payloadChunk(c *conn, chunk []byte) bool {
	ws.Cipher(chunk, c.cur.Mask, int(c.curGot))
	c.curGot += int64(len(chunk))
	if c.isText(c.cur.OpCode) && !c.compressed(c.cur) {
		st, ok := utf8Step(c.utf8, chunk)
		c.utf8 = st
		return ok
	}
	return true
}

func (c *conn) isText(op ws.OpCode) bool {
	return op == ws.OpText || (op == ws.OpContinuation && c.msgOp == ws.OpText)
}

// utf8Deflated is the value of conn.utf8 while the open fragmented message
// is compressed: its fragments carry DEFLATE data, not text, and the
// message is validated once inflated ([RFC7692 6.1]). No validator state
// has this bit.
const utf8Deflated utf8State = 1 << 31

// compressed reports whether frame h carries compressed data: RSV1 on the
// first frame of a message ([RFC7692 6]), or a continuation of a message
// that began so (check has refused RSV1 everywhere else).
func (c *conn) compressed(h ws.Header) bool {
	if h.OpCode == ws.OpContinuation {
		return c.utf8 == utf8Deflated
	}
	return h.Rsv1()
}

// parseFrames handles every complete frame in data and keeps the tail of an
// incomplete one. It returns false when the connection must close now.
func (w *worker) parseFrames(c *conn, data []byte) bool {
	for len(data) > 0 {
		if c.phase != phaseOpen {
			// We sent Close: data frames are no longer parsed, but a clean
			// close still looks for the peer's Close in the rest.
			w.scanClosing(c, data)
			return true
		}
		w.br.Reset(data)
		h, err := ws.ReadHeaderBuffer(&w.br, w.hb[:])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			c.hdrN = uint8(copy(c.hdr[:], data))
			return true
		}
		if err != nil {
			// [RFC6455 5.2]: the most significant bit of a 64-bit
			// length MUST be 0.
			return w.fail(c, ws.StatusProtocolError)
		}
		if code := w.check(c, h); code != 0 {
			return w.fail(c, code)
		}
		data = data[len(data)-w.br.Len():]
		if int64(len(data)) < h.Length {
			// Hold what arrived, not what the header declares.
			c.cur, c.inFrame, c.curGot = h, true, 0
			p, ok := w.s.holdBuf(nil, len(data))
			if !ok {
				c.curGot = int64(len(data)) // discarded: refuse skips the rest
				return w.refuse(c)
			}
			c.frame = p
			*c.frame = append(*c.frame, data...)
			if !w.payloadChunk(c, *c.frame) {
				return w.fail(c, ws.StatusInvalidFramePayloadData)
			}
			return true
		}
		payload := data[:h.Length]
		data = data[h.Length:]
		if len(data) > 0 && w.corkConn == nil {
			// More than this frame arrived: gather what the batch sends
			// to c and write it once, after the batch (readFrames).
			w.corkConn = c
		}
		ws.Cipher(payload, h.Mask, 0)
		if !w.handleFrame(c, h, payload, false) {
			return false
		}
	}
	return true
}

// check validates a header against the connection's state and limits and
// returns the close code to fail with, or 0.
func (w *worker) check(c *conn, h ws.Header) ws.StatusCode {
	st := ws.StateServerSide
	if c.msgOp != 0 {
		st |= ws.StateFragmented
	}
	// Unmasked frames, RSV bits without an extension, reserved opcodes,
	// control frames over 125 bytes or fragmented, continuation without an
	// open message and a new data frame inside one: all 1002.
	if h.Rsv1() && c.deflate && (h.OpCode == ws.OpText || h.OpCode == ws.OpBinary) {
		// [RFC7692 6]: the Per-Message Compressed bit is RSV1 of the
		// first frame of a message. On a control frame, a continuation,
		// or without the extension negotiated it stays set and fails
		// below ([RFC7692 6.1]: RSV1 "MUST NOT" be set on a non-first
		// frame or a control frame; [RFC6455 5.2]: an RSV bit no
		// extension defines fails the connection).
		h.Rsv &^= ws.Rsv(true, false, false)
	}
	if ws.CheckHeader(h, st) != nil {
		return ws.StatusProtocolError
	}
	// The limit is on the whole message, checked from the declared length
	// before a payload byte is read or buffered.
	// (Written as a subtraction: a declared length near 2^63 would make
	// msgLen+Length overflow and pass.)
	if h.OpCode.IsData() && h.Length > int64(w.s.cfg.MaxMessage)-c.msgLen {
		return ws.StatusMessageTooBig
	}
	return 0
}

// handleFrame acts on one complete, unmasked frame. checked says the
// payload already went through the incremental UTF-8 validator.
func (w *worker) handleFrame(c *conn, h ws.Header, payload []byte, checked bool) bool {
	switch h.OpCode {
	case ws.OpText, ws.OpBinary:
		if !h.Fin {
			c.msgOp, c.msgLen = h.OpCode, 0
			if h.Rsv1() {
				c.utf8 = utf8Deflated
			}
			return w.appendMessage(c, h, payload, checked)
		}
		if h.Rsv1() {
			return w.inflateDeliver(c, h.OpCode, payload)
		}
		if h.OpCode == ws.OpText {
			valid := c.utf8 == 0
			if !checked {
				valid = utf8.Valid(payload)
			}
			c.utf8 = 0
			if !valid {
				return w.fail(c, ws.StatusInvalidFramePayloadData)
			}
		}
		return w.deliver(c, Opcode(h.OpCode), payload)
	case ws.OpContinuation:
		return w.appendMessage(c, h, payload, checked)
	case ws.OpPing:
		// [RFC6455 5.5.2]: Upon receipt of a Ping frame, an endpoint MUST
		// send a Pong frame in response ... with the same Application data.
		w.st.pingsIn.Add(1) // each gets one pong: PongsOut = PingsIn
		return w.send(c, ws.OpPong, payload)
	case ws.OpPong:
		w.st.pongsIn.Add(1)
		return true // unsolicited pongs are ignored
	case ws.OpClose:
		return w.handleClose(c, payload)
	}
	return true
}

// appendMessage adds a fragment to the open message and delivers the
// message when the fragment is the last one.
func (w *worker) appendMessage(c *conn, h ws.Header, payload []byte, checked bool) bool {
	z := c.utf8 == utf8Deflated
	if c.msgOp == ws.OpText && !checked && !z {
		st, ok := utf8Step(c.utf8, payload)
		c.utf8 = st
		if !ok {
			return w.fail(c, ws.StatusInvalidFramePayloadData)
		}
	}
	c.msgLen += int64(len(payload))
	need := len(payload)
	if c.msg != nil {
		need += len(*c.msg)
	}
	p, ok := w.s.holdBuf(c.msg, need)
	if !ok {
		return w.refuse(c)
	}
	c.msg = p
	*c.msg = append(*c.msg, payload...)
	if !h.Fin {
		return true
	}
	if c.msgOp == ws.OpText && c.utf8 != 0 && !z {
		return w.fail(c, ws.StatusInvalidFramePayloadData) // message ends inside a rune
	}
	op, msg := c.msgOp, c.msg
	c.msgOp, c.msgLen, c.msg, c.utf8 = 0, 0, nil, 0
	if z {
		ok = w.inflateDeliver(c, op, *msg)
	} else {
		ok = w.deliver(c, Opcode(op), *msg)
	}
	w.s.dropBuf(msg)
	return ok
}

// handleClose answers a Close frame and starts closing.
func (w *worker) handleClose(c *conn, payload []byte) bool {
	var code ws.StatusCode
	if len(payload) >= 2 {
		w.s.stats.closesIn[closeBucket(ws.StatusCode(binary.BigEndian.Uint16(payload)))].Add(1)
	} else {
		w.s.stats.closesIn[closeBucket(0)].Add(1)
	}
	switch len(payload) {
	case 0: // no status: answer with an empty Close
	case 1:
		return w.fail(c, ws.StatusProtocolError)
	default:
		code = ws.StatusCode(binary.BigEndian.Uint16(payload))
		if !validCloseCode(code) {
			return w.fail(c, ws.StatusProtocolError)
		}
		// [RFC6455 5.5.1]: the reason is UTF-8 encoded data.
		if !utf8.Valid(payload[2:]) {
			return w.fail(c, ws.StatusInvalidFramePayloadData)
		}
	}
	// [RFC6455 5.5.1]: the endpoint ... MUST send a Close frame in
	// response. It typically echos the status code it received.
	c.peerClosed = true
	return w.startClose(c, code, true)
}

// validCloseCode reports whether a peer may send code in a Close frame
// ([RFC6455 7.4.1, 7.4.2] and the IANA registry: 1004-1006 and 1015 are
// never sent on the wire; 1016-2999 are unassigned; 5000 and up undefined).
func validCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// fail is _Fail the WebSocket Connection_: send Close with code, stop
// reading frames, close once the Close is out and the peer has answered or
// the close timeout passed.
func (w *worker) fail(c *conn, code ws.StatusCode) bool {
	return w.startClose(c, code, false)
}

// startClose sends a Close frame (empty body when code is 0) and moves c to
// phaseClosing. aligned says the input stream is still at a frame boundary
// (a clean close, not a protocol failure), so the peer's answering Close can
// be recognised. It returns false when the frame cannot be sent at all.
func (w *worker) startClose(c *conn, code ws.StatusCode, aligned bool) bool {
	if c.phase == phaseClosing {
		return true // already on its way
	}
	var body [2]byte
	b := body[:0]
	if code != 0 {
		binary.BigEndian.PutUint16(body[:], uint16(code))
		b = body[:]
	}
	hdr := putHeader(&w.oh, ws.OpClose, len(b))
	c.mu.Lock()
	if c.closeSent {
		// The application's Close (or an overflow) got there first: its
		// frame is out, and that code is the one OnClose reports.
		code = ws.StatusCode(c.closeCode)
		c.mu.Unlock()
		w.enterClosing(c, aligned, CloseCode(code))
		return true
	}
	r := w.writeLocked(c, hdr, b)
	c.closeSent = r.ok()
	c.closeCode = uint16(code)
	c.mu.Unlock()
	if !r.ok() {
		return false
	}
	w.s.stats.closesOut[closeBucket(code)].Add(1)
	if code == 0 {
		code = ws.StatusCode(CloseNoStatus) // the peer's empty Close
	}
	w.enterClosing(c, aligned, CloseCode(code))
	return true
}

// enterClosing leaves the open (or handshake) phase for good: out of the
// wheel, its MaxConns slot freed, buffers returned, close deadline set, and
// OnClose called with code when the connection was open. The end of the
// worker's turn (finishClosing) decides when the descriptor goes.
func (w *worker) enterClosing(c *conn, aligned bool, code CloseCode) {
	s := w.s
	wasOpen := c.phase == phaseOpen
	switch c.phase {
	case phaseOpen:
		s.wheel.remove(c)
		s.dropOpen()
	case phaseHandshake:
		s.hsList.remove(c)
	}
	// Keep the position in the input stream: the rest of a frame in
	// progress is skipped, a partial header kept.
	skip := int64(0)
	if c.inFrame {
		skip = c.cur.Length - c.curGot
	}
	hdr, hdrN := c.hdr, c.hdrN
	peerClosed := c.peerClosed
	s.resetRead(c)
	c.phase = phaseClosing
	c.skip, c.alignedIn, c.peerClosed = skip, aligned, peerClosed
	if aligned {
		c.hdr, c.hdrN = hdr, hdrN
	}
	s.clList.push(c, s.now())
	if wasOpen {
		s.leaveTopics(c)
		s.callClose(c, code)
	}
}

// send writes one unfragmented control frame (a pong).
func (w *worker) send(c *conn, op ws.OpCode, payload []byte) bool {
	hdr := putHeader(&w.oh, op, len(payload))
	return w.write(c, hdr, payload)
}

// write sends bytes a+b through c's queue rules (never dropped).
func (w *worker) write(c *conn, a, b []byte) bool {
	c.mu.Lock()
	r := w.writeLocked(c, a, b)
	c.mu.Unlock()
	if r == writeOverflow {
		w.s.stats.overflows.Add(1)
	}
	return r.ok()
}

// writeLocked sends a+b to c, gathered into the batch when c is the
// connection whose batch the worker is handling. Caller holds c.mu.
func (w *worker) writeLocked(c *conn, a, b []byte) writeResult {
	if w.corkConn == c {
		return c.gatherLocked(a, b, w.s.cfg.MaxOutbound)
	}
	return c.writeLocked(a, b, false, w.s.cfg.MaxOutbound)
}

// uncork ends the batch of c: what it gathered leaves in one write(2). It
// returns ok, or false when the socket broke. Called on the worker's
// goroutine after each read's frames are handled, before the read buffer
// is used again.
func (w *worker) uncork(c *conn, ok bool) bool {
	if w.corkConn != c {
		return ok
	}
	w.corkConn = nil
	if w.gone {
		return ok // handed off to net/http: nothing was gathered
	}
	c.mu.Lock()
	flushed := c.flushLocked()
	c.mu.Unlock()
	return ok && flushed
}

// putHeader encodes an unmasked final frame header into b.
func putHeader(b *[ws.MaxHeaderSize]byte, op ws.OpCode, n int) []byte {
	b[0] = 0x80 | byte(op)
	switch {
	case n <= 125:
		b[1] = byte(n)
		return b[:2]
	case n <= 0xFFFF:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		return b[:4]
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		return b[:10]
	}
}
