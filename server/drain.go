package server

// Drain: a producer that sends to a slow client can stop when Conn.Pending
// grows and resume when the queue has emptied, told by the App's OnDrain
// instead of polling. A queue that goes over half of Config.MaxOutbound
// arms the connection (conn.drainArm, under conn.mu); the flush that
// empties it sets evDrain, and the worker running the connection calls
// OnDrain at the end of that turn, or of the next one when the flush ran
// on another goroutine (a send, a push), which notifies it.

// Drainer is an optional interface of the App: a Config.App that has
// OnDrain gets it.
type Drainer interface {
	// OnDrain is called on the worker running c (like every App method:
	// in order with c's other calls, and it must not block) when c's
	// outbound queue, having been over half of Config.MaxOutbound, has
	// emptied: the worker checks the queue empty just before the call, so
	// everything sent before that is in the kernel's hands (a send from
	// another goroutine may queue again while OnDrain runs). If a send
	// refilled it between the flush and the check, the episode goes on
	// and OnDrain comes when it empties. Once per such episode; never
	// after OnClose, nor for a connection that is closing.
	OnDrain(c Conn)
}

// drained notifies c's worker of an emptied queue that a flush outside
// its turn found (evDrain). Caller holds c.mu.
func (s *Server) drained(c *conn) {
	if s.drainer != nil && c.ev.Load()&evDrain != 0 && !c.closed {
		s.notify(c)
	}
}

// callDrain runs the App's OnDrain; it reports whether it panicked.
func (s *Server) callDrain(c *conn) (panicked bool) {
	defer s.recoverApp("OnDrain", c, &panicked)
	s.drainer.OnDrain(s.handle(c))
	return false
}
