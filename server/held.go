package server

import "github.com/gobwas/ws"

// Held buffers: the bytes of an incomplete frame (conn.frame) and of a
// fragmented message being reassembled (conn.msg). A client chooses when
// these complete, so they are the memory a cheap client could pin. Two
// rules bound them:
//
//   - A held buffer grows with the bytes that actually arrived, never with
//     the length a header declares: it starts at the size class of what is
//     there and at least doubles when it fills, so it is at most twice the
//     bytes received (or 512 B) and growing costs amortised one copy.
//   - Their capacities, over all connections, are charged to one budget,
//     Config.MaxBuffered (Server.buffered). A connection whose next chunk
//     would pass it is closed with 1013 (Try Again Later) and counted.
//
// Frames that arrive whole in one read never touch a held buffer: they are
// handled in place in the worker's read buffer. The copies Conn.Go makes
// for its jobs are charged to the same budget (offload.go): a Go that would
// pass it is refused (Skipped), nothing is closed.

// statusTryAgainLater is 1013 ([RFC6455 7.4.2] registry: the server is
// overloaded, the client may try again later).
const statusTryAgainLater ws.StatusCode = 1013

// holdBuf returns a buffer with room for n bytes in all, holding p's bytes
// (p may be nil), and charges any growth to the budget. It returns p and
// false, changing nothing, when the growth would pass Config.MaxBuffered.
func (s *Server) holdBuf(p *[]byte, n int) (*[]byte, bool) {
	old := 0
	if p != nil {
		if old = cap(*p); old >= n {
			return p, true
		}
	}
	grow := int64(1<<classOf(n) - old)
	if s.buffered.Add(grow) > int64(s.cfg.MaxBuffered) {
		s.buffered.Add(-grow)
		return p, false
	}
	q := getBuf(n)
	if p != nil {
		*q = append(*q, *p...)
		putBuf(p)
	}
	return q, true
}

// dropBuf returns a held buffer to its pool and its capacity to the budget.
func (s *Server) dropBuf(p *[]byte) {
	if p != nil {
		s.buffered.Add(-int64(cap(*p)))
		putBuf(p)
	}
}

// refuse closes c with 1013 because its held bytes would pass the budget.
// The input stays frame-aligned (the rest of a frame in progress is
// skipped), so the peer's answering Close is still recognised.
func (w *worker) refuse(c *conn) bool {
	w.s.stats.bufferRefusals.Add(1)
	return w.startClose(c, statusTryAgainLater, true)
}
