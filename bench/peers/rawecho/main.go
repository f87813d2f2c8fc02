//go:build linux

// Command rawecho is the physical-limit benchmark peer for echo: raw epoll on
// golang.org/x/sys/unix, no WebSocket library, no net package on the data
// path. It answers the HTTP upgrade on GET /ws with a correct 101 (computed
// Sec-WebSocket-Accept) and from then on writes every byte it reads straight
// back, unparsed — so the client receives its own masked frames. What the
// load generator measures against it is the kernel + loopback cost of a
// round trip, with nothing of WebSocket framing, allocation or scheduling.
//
// It deliberately does NOT follow the rest of the peer contract: no
// "Hi Client!" greeting and no time pushes (-push-interval is accepted and
// ignored). It prints "listening on ADDR" to stderr once ready and exits 0 on
// SIGINT/SIGTERM like the others.
//
// Design: -loops event loops (GOMAXPROCS by default), each a goroutine with
// its own level-triggered epoll. All loops wait on the one non-blocking
// listening socket with EPOLLEXCLUSIVE and accept4 into their own epoll. The
// read buffer is one per loop. A write the socket does not take whole keeps
// the rest on the connection and switches its interest from EPOLLIN to
// EPOLLOUT, so the loop stops reading that client until the rest is out:
// nothing ever blocks and per-connection memory stays bounded by one read.
//
// This peer stays a single file on purpose and shares no code with the
// other peers or with wsload: each peer is written in its own library's
// idiom, the way that library's docs show, so that it measures the library
// and not our helpers. The greeting, push loop and broadcast look alike
// across peers (duplicates lists them) because the contract is the same;
// they are not to be merged.
package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	readBufSize  = 64 << 10
	maxHandshake = 8 << 10
	maxEvents    = 256
	acceptBatch  = 64 // accepts per wakeup, so one loop does not take a whole burst
	wsGUID       = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

type state uint8

const (
	stHandshake state = iota // reading the HTTP request
	stEcho                   // upgraded: bytes in → same bytes out
	stClosing                // error response queued; close once it is out
)

type conn struct {
	fd    int
	state state
	in    []byte // handshake bytes so far
	// out holds bytes the socket has not taken yet; while it is non-empty
	// the interest is EPOLLOUT instead of EPOLLIN.
	out []byte
}

type loop struct {
	ep      int
	lfd     int
	reserve int // spare descriptor, given up to shed a connection at EMFILE
	conns   []*conn
	buf     []byte
	events  []unix.EpollEvent
}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	_ = flag.Duration("push-interval", 5*time.Second, "accepted and ignored: rawecho never pushes")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "event loops, each with its own epoll")
	flag.Parse()
	if *loops < 1 {
		*loops = 1
	}

	lfd, bound, err := listen(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawecho:", err)
		os.Exit(1)
	}
	for i := 0; i < *loops; i++ {
		l, err := newLoop(lfd, *loops > 1)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rawecho:", err)
			os.Exit(1)
		}
		go l.run()
	}
	fmt.Fprintln(os.Stderr, "listening on", bound)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	// The loops sit in epoll_wait; ending the process closes every socket.
	_ = unix.Close(lfd)
}

// listen opens a non-blocking listening socket on addr ("host:port"; an empty
// host means every address, dual-stack when IPv6 is available).
func listen(addr string) (int, string, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return -1, "", err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return -1, "", fmt.Errorf("bad port %q", portStr)
	}
	var ip net.IP
	if host != "" {
		if ip = net.ParseIP(host); ip == nil {
			ips, err := net.LookupIP(host)
			if err != nil || len(ips) == 0 {
				return -1, "", fmt.Errorf("resolve %q: %v", host, err)
			}
			ip = ips[0]
		}
	}
	try := func(family int, sa unix.Sockaddr) (int, error) {
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err != nil {
			return -1, err
		}
		if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err == nil {
			if family == unix.AF_INET6 && ip == nil {
				err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
			}
		}
		if err == nil {
			err = unix.Bind(fd, sa)
		}
		if err == nil {
			err = unix.Listen(fd, 65535) // the kernel caps it at net.core.somaxconn
		}
		if err != nil {
			_ = unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	var fd int
	switch {
	case ip == nil:
		fd, err = try(unix.AF_INET6, &unix.SockaddrInet6{Port: port})
		if err != nil {
			fd, err = try(unix.AF_INET, &unix.SockaddrInet4{Port: port})
		}
	case ip.To4() != nil:
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip.To4())
		fd, err = try(unix.AF_INET, sa)
	default:
		sa := &unix.SockaddrInet6{Port: port}
		copy(sa.Addr[:], ip.To16())
		fd, err = try(unix.AF_INET6, sa)
	}
	if err != nil {
		return -1, "", fmt.Errorf("listen %s: %w", addr, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return -1, "", err
	}
	var bound string
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		bound = net.JoinHostPort(net.IP(sa.Addr[:]).String(), strconv.Itoa(sa.Port))
	case *unix.SockaddrInet6:
		bound = net.JoinHostPort(net.IP(sa.Addr[:]).String(), strconv.Itoa(sa.Port))
	}
	return fd, bound, nil
}

func newLoop(lfd int, exclusive bool) (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}
	if exclusive {
		ev.Events |= unix.EPOLLEXCLUSIVE // wake one loop per incoming connection
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &ev); err != nil {
		_ = unix.Close(ep)
		return nil, err
	}
	reserve, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		reserve = -1
	}
	return &loop{
		ep:      ep,
		lfd:     lfd,
		reserve: reserve,
		buf:     make([]byte, readBufSize),
		events:  make([]unix.EpollEvent, maxEvents),
	}, nil
}

func (l *loop) run() {
	for {
		n, err := unix.EpollWait(l.ep, l.events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			fmt.Fprintln(os.Stderr, "rawecho: epoll_wait:", err)
			os.Exit(1)
		}
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.lfd {
				l.accept()
				continue
			}
			c := l.get(fd)
			if c == nil {
				continue
			}
			if ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				l.close(c)
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				l.flush(c)
				continue
			}
			if ev.Events&unix.EPOLLIN != 0 {
				l.readable(c)
			}
		}
	}
}

func (l *loop) get(fd int) *conn {
	if fd < len(l.conns) {
		return l.conns[fd]
	}
	return nil
}

func (l *loop) accept() {
	for i := 0; i < acceptBatch; i++ {
		fd, _, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.EINTR, unix.ECONNABORTED:
			case unix.EMFILE, unix.ENFILE:
				l.shed()
			default:
				fmt.Fprintln(os.Stderr, "rawecho: accept4:", err)
			}
			return
		}
		// Same as every Go net.Conn the other peers use.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &conn{fd: fd}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			_ = unix.Close(fd)
			continue
		}
		for fd >= len(l.conns) {
			l.conns = append(l.conns, make([]*conn, len(l.conns)+1024)...)
		}
		l.conns[fd] = c
	}
}

// shed accepts and drops one pending connection at the descriptor limit, so
// the level-triggered listener does not spin; it frees the reserve for that.
func (l *loop) shed() {
	if l.reserve < 0 {
		return
	}
	_ = unix.Close(l.reserve)
	if fd, _, err := unix.Accept4(l.lfd, unix.SOCK_CLOEXEC); err == nil {
		_ = unix.Close(fd)
	}
	l.reserve, _ = unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

func (l *loop) close(c *conn) {
	l.conns[c.fd] = nil
	_ = unix.Close(c.fd) // also leaves the epoll set
	c.in, c.out = nil, nil
}

func (l *loop) readable(c *conn) {
	// Level-triggered: a read that fills the buffer is retried right away, a
	// short one means the socket is drained for now.
	for range 8 {
		n, err := unix.Read(c.fd, l.buf)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				return
			}
			l.close(c)
			return
		}
		if n == 0 {
			l.close(c)
			return
		}
		switch c.state {
		case stEcho:
			if !l.send(c, l.buf[:n]) {
				return
			}
		case stHandshake:
			c.in = append(c.in, l.buf[:n]...)
			if !l.handshake(c) {
				return
			}
		default:
			return
		}
		if n < len(l.buf) {
			return
		}
	}
}

// send writes p, keeping what the socket does not take. It reports whether
// the connection is still open and may keep reading.
func (l *loop) send(c *conn, p []byte) bool {
	for len(p) > 0 {
		n, err := unix.Write(c.fd, p)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				break
			}
			l.close(c)
			return false
		}
		p = p[n:]
	}
	if len(p) == 0 {
		return true
	}
	c.out = append(c.out[:0], p...)
	l.interest(c, unix.EPOLLOUT)
	return false
}

// flush writes pending bytes on EPOLLOUT and goes back to reading when done.
func (l *loop) flush(c *conn) {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return
			}
			l.close(c)
			return
		}
		c.out = c.out[n:]
	}
	c.out = nil
	if c.state == stClosing {
		l.close(c)
		return
	}
	l.interest(c, unix.EPOLLIN)
}

func (l *loop) interest(c *conn, events uint32) {
	ev := unix.EpollEvent{Events: events, Fd: int32(c.fd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		l.close(c)
	}
}

var headerEnd = []byte("\r\n\r\n")

// handshake answers the request once its header is complete. It reports
// whether the connection is still open and reading.
func (l *loop) handshake(c *conn) bool {
	end := bytes.Index(c.in, headerEnd)
	if end < 0 {
		if len(c.in) > maxHandshake {
			return l.reject(c, "431 Request Header Fields Too Large")
		}
		return true
	}
	req, rest := c.in[:end+2], c.in[end+4:]
	accept, status := parseUpgrade(req)
	if status != "" {
		return l.reject(c, status)
	}
	resp := make([]byte, 0, 160+len(rest))
	resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	resp = append(resp, accept...)
	resp = append(resp, "\r\n\r\n"...)
	// Frames the client sent right behind its request are echoed too.
	resp = append(resp, rest...)
	c.in = nil
	c.state = stEcho
	return l.send(c, resp)
}

func (l *loop) reject(c *conn, status string) bool {
	c.in = nil
	c.state = stClosing
	resp := "HTTP/1.1 " + status + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	if l.send(c, []byte(resp)) {
		l.close(c) // all of it went out
	}
	return false
}

// parseUpgrade checks a WebSocket upgrade request for GET /ws (header lines,
// each ending in CRLF) and returns the Sec-WebSocket-Accept value, or the
// status line to answer with.
func parseUpgrade(req []byte) (accept []byte, status string) {
	line, req, _ := bytes.Cut(req, []byte("\r\n"))
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || !bytes.HasPrefix(proto, []byte("HTTP/1.")) {
		return nil, "400 Bad Request"
	}
	if path, _, _ := bytes.Cut(target, []byte("?")); string(path) != "/ws" {
		return nil, "404 Not Found"
	}
	if string(method) != "GET" {
		return nil, "405 Method Not Allowed"
	}
	var key []byte
	var upgrade, connection, version bool
	for len(req) > 0 {
		line, req, _ = bytes.Cut(req, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, "400 Bad Request"
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = hasToken(value, "websocket")
		case bytes.EqualFold(name, []byte("Connection")):
			connection = connection || hasToken(value, "upgrade")
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Version")):
			version = string(value) == "13"
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Key")):
			key = value
		}
	}
	if !upgrade || !connection || len(key) == 0 {
		return nil, "400 Bad Request"
	}
	if !version {
		return nil, "426 Upgrade Required\r\nSec-WebSocket-Version: 13"
	}
	h := sha1.New()
	h.Write(key)
	h.Write([]byte(wsGUID))
	sum := h.Sum(nil)
	accept = make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(accept, sum)
	return accept, ""
}

// hasToken reports whether a comma-separated header value holds tok
// (case-insensitively).
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(t), []byte(tok)) {
			return true
		}
	}
	return false
}
