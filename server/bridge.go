package server

import (
	"net"
	"sync"
)

// bridgeListener is the net.Listener of the embedded net/http server: the
// accept loop owns the real listening socket, and hands plain HTTP
// connections over through this channel.
type bridgeListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
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
	select {
	case <-l.done:
		c.Close()
		return
	default:
	}
	select {
	case l.ch <- c:
	default:
		c.Close()
	}
}

func (l *bridgeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
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
