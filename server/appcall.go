package server

import (
	"fmt"

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
	defer s.recoverApp(&panicked)
	s.app.OnOpen(s.handle(c))
	return false
}

func (s *Server) callMessage(c *conn, op Opcode, payload []byte) (panicked bool) {
	defer s.recoverApp(&panicked)
	s.app.OnMessage(s.handle(c), op, payload)
	return false
}

// callClose: a panic in OnClose is counted and reported; the connection is
// closing already.
func (s *Server) callClose(c *conn, code CloseCode) (panicked bool) {
	defer s.recoverApp(&panicked)
	s.app.OnClose(s.handle(c), code)
	return false
}

// recoverApp contains a panic in an App method: counted, reported through
// Config.OnError, and the connection closed with 1011 by the caller; the
// other connections of this worker never notice.
func (s *Server) recoverApp(panicked *bool) {
	if r := recover(); r != nil {
		*panicked = true
		s.stats.appPanics.Add(1)
		s.cfg.OnError(fmt.Errorf("server: application panic: %v", r))
	}
}

// deliver hands a whole message to the application.
func (w *worker) deliver(c *conn, op Opcode, payload []byte) bool {
	w.st.msgsIn.Add(1)
	w.st.bytesIn.Add(uint64(len(payload)))
	return w.afterApp(c, w.s.callMessage(c, op, payload))
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
