package server

import (
	"unsafe"

	"github.com/gobwas/ws"
)

// The engine's side of the application interface: every App method is
// called here, on the worker running the connection (OnClose also from
// Shutdown for connections still open when its context ends), behind a
// recover, and what the call asked for or caused is acted on before the
// worker goes on.

// handle is the application's handle to c. The worker owns c, so it reads
// gen without the lock (gen changes only while c is dead).
func (s *Server) handle(c *conn) Conn { return Conn{s: s, c: c, gen: c.gen} }

// callOpen, callMessage and callClose report whether the method panicked.
func (s *Server) callOpen(c *conn) (panicked bool) {
	defer s.recoverApp("OnOpen", c, &panicked)
	s.app.OnOpen(s.handle(c))
	return false
}

func (s *Server) callMessage(c *conn, op Opcode, payload []byte) (panicked bool) {
	defer s.recoverApp("OnMessage", c, &panicked)
	s.app.OnMessage(s.handle(c), op, payload)
	return false
}

// callClose: a panic in OnClose is counted and reported; the connection is
// closing already.
func (s *Server) callClose(c *conn, code CloseCode) (panicked bool) {
	defer s.recoverApp("OnClose", c, &panicked)
	s.app.OnClose(s.handle(c), code)
	return false
}

// recoverApp contains a panic in an application callback run for c (nil
// when none): counted, reported through Config.OnError as a *PanicError,
// and the connection closed with 1011 by the caller; the other
// connections of this worker never notice.
func (s *Server) recoverApp(callback string, c *conn, panicked *bool) {
	if r := recover(); r != nil {
		*panicked = true
		s.stats.appPanics.Add(1)
		s.cfg.OnError(s.panicError(callback, c, r))
	}
}

// deliver hands a whole message to the application.
func (w *worker) deliver(c *conn, op Opcode, payload []byte) bool {
	w.st.msgsIn.Add(1)
	w.st.bytesIn.Add(uint64(len(payload)))
	lent := w.lend(payload)
	panicked := w.s.callMessage(c, op, payload)
	if lent {
		w.lent.Store(nil)
	}
	return w.afterApp(c, panicked)
}

// lend records payload as borrowed by OnMessage when it lies in the read
// buffer, where the bytes just before it are its own frame's header: the
// client's header is the server's for the same length plus the 4-byte
// mask key, already used. Send of that payload (or a prefix of it) may
// then write its header there and send header and payload with one
// write(2) instead of a writev(2) of two pieces (frameInPlace).
func (w *worker) lend(payload []byte) bool {
	if len(payload) == 0 {
		return false
	}
	off := uintptr(unsafe.Pointer(&payload[0])) - uintptr(unsafe.Pointer(&w.buf[0]))
	if off < 2+4 || off >= uintptr(len(w.buf)) {
		return false // not in buf (a held buffer or a reassembled message)
	}
	w.lentOff, w.lentN = int(off), len(payload)
	w.lent.Store(&payload[0])
	return true
}

// frameInPlace returns the frame op+payload built in the read buffer in
// front of payload, when payload is (a prefix of) the one lent to
// OnMessage; ok is false otherwise. The header it writes over is the
// consumed client header, never payload bytes.
func (w *worker) frameInPlace(op ws.OpCode, payload []byte) (frame []byte, ok bool) {
	// lent first: lentOff and lentN are only this worker's to read, and a
	// match means we are on its goroutine.
	if len(payload) == 0 || w.lent.Load() != &payload[0] || len(payload) > w.lentN {
		return nil, false
	}
	var hb [ws.MaxHeaderSize]byte
	hdr := putHeader(&hb, op, len(payload))
	start := w.lentOff - len(hdr)
	copy(w.buf[start:], hdr)
	return w.buf[start : w.lentOff+len(payload)], true
}

// afterApp acts on what an App method did to c: a panic closes it with
// 1011; a Close (through the handle, or an overflow of its queue) moves it
// to the closing phase; a broken socket closes it now (false).
func (w *worker) afterApp(c *conn, panicked bool) bool {
	if panicked && c.phase == phaseOpen {
		return w.startClose(c, ws.StatusInternalServerError, true)
	}
	ev := c.ev.Load()
	if ev&evBroken != 0 {
		return false
	}
	if ev&evClose != 0 && c.phase == phaseOpen {
		c.ev.And(^evClose)
		w.closeRequested(c)
	}
	return true
}

// closeRequested enters the closing phase after a Close frame queued by
// Conn.Close or an overflow (evClose).
func (w *worker) closeRequested(c *conn) {
	c.mu.Lock()
	code := CloseCode(c.closeCode)
	c.mu.Unlock()
	w.enterClosing(c, true, code)
}
