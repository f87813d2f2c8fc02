package server

import (
	"net"
	"sync"
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

// prefixConn replays bytes read before the hand-off, then reads the socket.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
