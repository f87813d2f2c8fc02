package server

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// bridgeListener is the net.Listener of the embedded net/http server: the
// accept loop owns the real listening socket, and hands plain HTTP
// connections over through this channel.
//
// Invariant: once Close has returned, the channel is empty and stays empty,
// so every connection delivered is either accepted by net/http or closed
// here. mu makes deliver's send and Close's drain exclusive: without it a
// send could land just after the drain, with nobody left to accept it.
type bridgeListener struct {
	ch   chan net.Conn
	done chan struct{}
	addr net.Addr

	mu     sync.Mutex
	closed bool
}

func newBridgeListener() *bridgeListener {
	return &bridgeListener{ch: make(chan net.Conn, 256), done: make(chan struct{})}
}

func (l *bridgeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// deliver never blocks: when the HTTP server is not keeping up (or gone),
// the connection is dropped.
func (l *bridgeListener) deliver(c net.Conn) {
	l.mu.Lock()
	if !l.closed {
		select {
		case l.ch <- c:
			l.mu.Unlock()
			return
		default:
		}
	}
	l.mu.Unlock()
	c.Close()
}

// Close stops Accept and closes the connections net/http never took.
func (l *bridgeListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	for {
		select {
		case c := <-l.ch:
			c.Close()
		default:
			return nil
		}
	}
}

func (l *bridgeListener) Addr() net.Addr {
	if l.addr == nil {
		return &net.TCPAddr{}
	}
	return l.addr
}

// prefixConn is a handed-off connection as net/http sees it: it replays the
// bytes read before the hand-off, then reads the socket; it holds every read
// to the request's deadline; and it counts its descriptor until closed.
//
// The read deadline is clamped here rather than left to http.Server's
// ReadTimeout, because ReadTimeout counts from when net/http starts reading,
// after the header had already arrived (a client could spend
// HandshakeTimeout on the header and as long again on the body), and
// because net/http moves the read deadline itself (it clears it after the
// header when only ReadHeaderTimeout is set, and around its background
// read): whatever it asks, no read waits past readBy, so a body that never
// comes costs at most HandshakeTimeout from the accept. A hijacked
// connection belongs to its handler, deadlines included, and is no longer
// clamped.
type prefixConn struct {
	net.Conn
	prefix   []byte
	readBy   time.Time     // accept + HandshakeTimeout
	count    *atomic.Int64 // Server.httpConns
	hijacked atomic.Bool
	closed   atomic.Bool
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// clamp returns t, or readBy if t is later (a zero t, no deadline, is later).
func (c *prefixConn) clamp(t time.Time) time.Time {
	if c.hijacked.Load() || (!t.IsZero() && t.Before(c.readBy)) {
		return t
	}
	return c.readBy
}

func (c *prefixConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *prefixConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(c.clamp(t)); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// hijack lifts the clamp (net/http has just cleared the deadlines, which
// the clamp turned into readBy).
func (c *prefixConn) hijack() {
	c.hijacked.Store(true)
	c.Conn.SetReadDeadline(time.Time{})
}

// CloseWrite half-closes the socket. net/http's closeWriteAndWait looks for
// it (it is not part of net.Conn, so embedding hides *net.TCPConn's): when
// a handler left a body unread, net/http sends FIN after the response and
// waits before the full close, which the unread bytes turn into a RST.
// Without the FIN first, the client sees only the RST, and if it arrives
// before the client has read the response, many TCP stacks drop the
// response with it (net/http's closeWriteAndWait, golang.org/issue/3595).
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("server: handed-off connection cannot half-close")
}

// Close closes the descriptor; the first call uncounts it.
func (c *prefixConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.count.Add(-1)
	}
	return err
}
