package soak

// soak, the bad behaviours: each function runs one connection of its
// behaviour to its end and says how it ended. None waits longer than -hold
// for the server to act, nor past the window's end.

import (
	"errors"
	"fmt"
	"io"

	"github.com/wsmill/wsmill/bench/internal/proc"
	"github.com/wsmill/wsmill/bench/internal/wsclient"

	mrand "math/rand/v2"
	"net"
	"strconv"
	"syscall"
	"time"
)

// dialTCP opens a plain TCP connection the way dialWS does (source address,
// IP_BIND_ADDRESS_NO_PORT), without the upgrade.
func (s *soaker) dialTCP(g int) (*net.TCPConn, error) {
	o := s.dialOpts(g, 0)
	d := net.Dialer{Timeout: o.Timeout, Control: wsclient.SocketControl(o.Src != "", 0, false)}
	if o.Src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.Src)}
	}
	nc, err := d.DialContext(s.win, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	return nc.(*net.TCPConn), nil
}

// upgrade dials, upgrades and reads the greeting. When it fails, o says how
// (and ok is false).
func (s *soaker) upgrade(g, rcvbuf int) (c *wsclient.Conn, o soakOutcome, ok bool) {
	c, err := wsclient.Dial(s.win, s.dialOpts(g, rcvbuf))
	if err == nil {
		if err = c.ExpectGreeting(s.spec.DialTimeout); err != nil {
			c.Close()
		}
	}
	if err != nil {
		return nil, s.failed("upgrade: ", err), false
	}
	return c, o, true
}

// failed is the outcome of a connection that never got to misbehave.
func (s *soaker) failed(step string, err error) soakOutcome {
	if s.over() {
		return soakOutcome{skip: true}
	}
	return soakOutcome{kind: kindError, how: step + wsclient.ErrClass(err)}
}

// notClosed is the outcome of a connection the server still held when the
// client stopped waiting: at the window's end, or after -hold.
func (s *soaker) notClosed(what string) soakOutcome {
	if s.over() {
		return soakOutcome{kind: kindOpenAtEnd, how: "open at end" + what}
	}
	return soakOutcome{kind: kindGaveUp, how: "held until -hold" + what}
}

// wsEnd is how the server ended an upgraded connection, as its reader saw it.
type wsEnd struct {
	code    int       // first Close frame's code; 0 for a Close without one; -1 for no Close
	closeAt time.Time // when that Close arrived
	err     error     // how the stream ended: io.EOF, ECONNRESET, a timeout...
	at      time.Time // when it ended
	pings   int       // pings the server sent
	data    int64     // payload bytes of data frames other than time pushes
}

// closedBy is when the server acted: its Close frame, or else the end of the stream.
func (e wsEnd) closedBy() time.Time {
	if e.code >= 0 {
		return e.closeAt
	}
	return e.at
}

// serverEnded reports whether the server closed (a Close frame, or the
// stream ended by other than our own deadline).
func (e wsEnd) serverEnded() bool { return e.code >= 0 || !isTimeout(e.err) }

// watchWS reads frames until the stream ends (or deadline passes): pings
// are answered only when pong is set, onClose (if not nil) runs when the
// server's Close arrives, and reading goes on after it to see the TCP close.
func watchWS(c *wsclient.Conn, pong bool, deadline time.Time, onClose func()) <-chan wsEnd {
	ch := make(chan wsEnd, 1)
	c.NC.SetReadDeadline(deadline)
	go func() {
		e := wsEnd{code: -1}
		for {
			f, err := c.ReadFrame()
			if err != nil {
				e.err, e.at = err, time.Now()
				ch <- e
				return
			}
			switch f.Op {
			case wsclient.OpPing:
				e.pings++
				if pong {
					c.WriteFrame(wsclient.OpPong, f.Payload)
				}
			case wsclient.OpClose:
				if e.code < 0 {
					e.code, e.closeAt = wsclient.CloseCode(f.Payload), time.Now()
					if onClose != nil {
						onClose()
					}
				}
			case wsclient.OpText, wsclient.OpBinary, wsclient.OpContinuation:
				if !wsclient.IsPush(f.Op, f.Payload) {
					e.data += int64(len(f.Payload))
				}
			}
		}
	}()
	return ch
}

// closeHow names a Close frame by its code.
func closeHow(code int) string {
	if code == 0 {
		return "Close (no code)"
	}
	return "Close " + strconv.Itoa(code)
}

// endHow names the way a stream ended.
func endHow(err error) string {
	switch {
	case err == nil:
		return "open"
	case errors.Is(err, wsclient.ErrPeerClosed):
		return err.Error()[len("server sent "):]
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "RST"
	case errors.Is(err, syscall.EPIPE):
		return "EPIPE"
	case isTimeout(err):
		return "timeout"
	}
	return wsclient.ErrClass(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wsOutcome turns a watched end into the outcome of a bad connection; t0 is
// the behaviour's reference point for the time to the server's close.
func (s *soaker) wsOutcome(e wsEnd, t0 time.Time, what string) soakOutcome {
	if !e.serverEnded() {
		return s.notClosed(what)
	}
	how := endHow(e.err)
	if e.code >= 0 {
		how = closeHow(e.code)
	}
	return soakOutcome{kind: kindServer, how: how + what, after: e.closedBy().Sub(t0)}
}

// 1. hog: a binary frame declaring -max-message bytes (the largest the
// server must accept), whose payload then arrives 1 byte every -trickle. A
// server that sizes its buffer from the declared length spends
// -max-message per hog at once.
func (s *soaker) hog(g int) soakOutcome {
	c, o, ok := s.upgrade(g, 0)
	if !ok {
		return o
	}
	defer c.Close()
	s.open[classHog].Add(1)
	defer s.open[classHog].Add(-1)
	holdEnd := s.until(s.ss.Hold)
	// No pongs: we are inside a frame, a pong would become payload.
	ends := watchWS(c, false, holdEnd, nil)
	t0 := time.Now()
	c.NC.SetWriteDeadline(holdEnd)
	if err := c.WriteRaw(wsclient.AppendHeader(nil, 0x80|wsclient.OpBinary, uint64(s.ss.MaxMessage), true)); err != nil {
		return s.wsOutcome(<-ends, t0, "")
	}
	tk := time.NewTicker(s.ss.Trickle)
	defer tk.Stop()
	one := []byte{0}
	for {
		select {
		case e := <-ends:
			return s.wsOutcome(e, t0, "")
		case <-tk.C:
		}
		if !time.Now().Before(holdEnd) {
			break
		}
		one[0] = byte(mrand.Uint32())
		if err := c.WriteRaw(one); err != nil {
			// Dead: give the reader a moment to see how.
			c.NC.SetReadDeadline(time.Now().Add(time.Second))
			break
		}
	}
	return s.wsOutcome(<-ends, t0, "")
}

// 2. http-hold: a plain HTTP request promising a body that never comes.
// net/http answers GET / without reading the body; what matters is whether
// the descriptor is freed afterwards.
func (s *soaker) httpHold(g int) soakOutcome {
	nc, err := s.dialTCP(g)
	if err != nil {
		return s.failed("", err)
	}
	defer nc.Close()
	s.open[classHTTPHold].Add(1)
	defer s.open[classHTTPHold].Add(-1)
	t0 := time.Now()
	nc.SetDeadline(s.until(s.ss.Hold))
	req := "GET / HTTP/1.1\r\nHost: " + s.spec.Addr + "\r\nContent-Length: 100\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return soakOutcome{kind: kindServer, how: "closed before the request: " + endHow(err), after: time.Since(t0)}
	}
	var head [64]byte
	n := 0
	buf := make([]byte, 4096)
	for {
		k, err := nc.Read(buf)
		if n < len(head) {
			n += copy(head[n:], buf[:k])
		}
		if err == nil {
			continue
		}
		status := "no response"
		if code := httpStatus(head[:n]); code > 0 {
			status = "HTTP " + strconv.Itoa(code)
		}
		if isTimeout(err) {
			return s.notClosed(" (" + status + ")")
		}
		return soakOutcome{kind: kindServer, how: status + ", then " + endHow(err), after: time.Since(t0)}
	}
}

// httpStatus is the status code of an HTTP/1.x response's first line, 0 if
// b does not start with one.
func httpStatus(b []byte) int {
	const p = "HTTP/1."
	if len(b) < len(p)+6 || string(b[:len(p)]) != p || b[len(p)+1] != ' ' {
		return 0
	}
	code, err := strconv.Atoi(string(b[len(p)+2 : len(p)+5]))
	if err != nil || code < 100 || code > 999 {
		return 0
	}
	return code
}

// 3. burst-fin: -burst bytes of 64 KiB masked binary frames, then
// shutdown(SHUT_WR) while the echoes are read. The server has a whole
// request stream ending in FIN: it should finish (or drop) the echoes and
// close. One that is still open -fin-wait after the FIN is counted as a
// server bug.
func (s *soaker) burstFIN(g int) soakOutcome {
	c, o, ok := s.upgrade(g, 0)
	if !ok {
		return o
	}
	defer c.Close()
	s.open[classBurstFIN].Add(1)
	defer s.open[classBurstFIN].Add(-1)
	deadline := s.until(s.ss.Hold)
	ends := watchWS(c, true, deadline, nil)
	c.NC.SetWriteDeadline(deadline)
	size := int64(min(64<<10, s.ss.MaxMessage))
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 31)
	}
	var sent int64
	t0 := time.Now()
	for sent < int64(s.ss.Burst) {
		n := min(size, int64(s.ss.Burst)-sent)
		if err := c.WriteFrame(wsclient.OpBinary, payload[:n]); err != nil {
			e := <-ends
			s.bSent.Add(sent)
			s.bEcho.Add(e.data)
			if !e.serverEnded() && isTimeout(err) {
				return s.notClosed(" (burst not taken)")
			}
			return s.wsOutcome(e, t0, " during the burst")
		}
		sent += n
	}
	s.bSent.Add(sent)
	if err := c.NC.(*net.TCPConn).CloseWrite(); err != nil {
		return s.wsOutcome(<-ends, t0, " before the FIN")
	}
	fin := time.Now()
	// Wait at least -fin-wait after the FIN (a bug is a bug even near the
	// window's end), at most -hold.
	c.NC.SetReadDeadline(fin.Add(max(s.ss.FinWait, min(s.ss.Hold, time.Until(s.end)))))
	e := <-ends
	s.bEcho.Add(e.data)
	echo := "all echoed"
	if e.data < sent {
		echo = "partly echoed"
	}
	switch {
	case !e.serverEnded():
		// Waited at least -fin-wait, even past the window: a bug is a bug.
		s.finBug.Add(1)
		return soakOutcome{kind: kindGaveUp, how: "not closed after FIN, client gave up (server bug; " + echo + ")"}
	case e.at.Sub(fin) > s.ss.FinWait:
		s.finBug.Add(1)
		return soakOutcome{kind: kindServer, how: "closed later than -fin-wait after FIN (server bug; " + echo + ")", after: e.at.Sub(fin)}
	}
	return soakOutcome{kind: kindServer, how: endHow(e.err) + " after FIN (" + echo + ")", after: e.at.Sub(fin)}
}

// 4. slowloris: the upgrade request, one byte every -trickle. The
// handshake timeout is absolute, so the server should drop it then.
func (s *soaker) slowloris(g int) soakOutcome {
	nc, err := s.dialTCP(g)
	if err != nil {
		return s.failed("", err)
	}
	defer nc.Close()
	s.open[classSlowloris].Add(1)
	defer s.open[classSlowloris].Add(-1)
	t0 := time.Now()
	holdEnd := s.until(s.ss.Hold)
	nc.SetDeadline(holdEnd)
	type end struct {
		status int
		err    error
		at     time.Time
	}
	ends := make(chan end, 1)
	go func() {
		var head [64]byte
		n := 0
		buf := make([]byte, 1024)
		for {
			k, err := nc.Read(buf)
			if n < len(head) {
				n += copy(head[n:], buf[:k])
			}
			if err != nil {
				ends <- end{httpStatus(head[:n]), err, time.Now()}
				return
			}
		}
	}()
	req := wsclient.UpgradeRequest(s.spec.Addr, wsclient.UpgradeKey())
	tk := time.NewTicker(s.ss.Trickle)
	defer tk.Stop()
	for i := 0; i < len(req); i++ {
		select {
		case e := <-ends:
			return s.slowlorisEnd(e.status, e.err, e.at.Sub(t0))
		case <-tk.C:
		}
		if _, err := nc.Write([]byte{req[i]}); err != nil {
			break
		}
	}
	e := <-ends // the whole request went out: the server may have upgraded it
	if e.status == 101 {
		return soakOutcome{kind: kindGaveUp, how: "upgraded after the whole slow request (not dropped)"}
	}
	return s.slowlorisEnd(e.status, e.err, e.at.Sub(t0))
}

func (s *soaker) slowlorisEnd(status int, err error, after time.Duration) soakOutcome {
	st := ""
	if status > 0 {
		st = "HTTP " + strconv.Itoa(status) + ", then "
	}
	if isTimeout(err) {
		return s.notClosed(" (request incomplete)")
	}
	return soakOutcome{kind: kindServer, how: st + endHow(err), after: after}
}

// 5. no-read: a small receive window, then 16 KiB frames every 10 ms and
// never a read. The echoes back up; the server should close it once its
// outbound queue passes -max-outbound (after the kernel's send buffer).
func (s *soaker) noRead(g int) soakOutcome {
	c, o, ok := s.upgrade(g, 4096)
	if !ok {
		return o
	}
	defer c.Close()
	s.open[classNoRead].Add(1)
	defer s.open[classNoRead].Add(-1)
	t0 := time.Now()
	deadline := s.until(s.ss.Hold)
	c.NC.SetWriteDeadline(deadline)
	msg := make([]byte, 16<<10)
	wsclient.EchoPayload(msg, 7)
	tk := time.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	for time.Now().Before(deadline) {
		<-tk.C
		if err := c.WriteFrame(wsclient.OpBinary, msg); err != nil {
			if isTimeout(err) {
				break
			}
			return soakOutcome{kind: kindServer, how: "write failed: " + endHow(err), after: time.Since(t0)}
		}
	}
	return s.notClosed("")
}

// 6. reset: SO_LINGER 0 and close, so the server gets an RST: right after
// connect, in the middle of the upgrade request, or in the middle of a frame.
func (s *soaker) reset(g, n int) soakOutcome {
	abort := func(nc net.Conn) {
		nc.(*net.TCPConn).SetLinger(0)
		nc.Close()
	}
	pause := func() { proc.Sleep(s.win, time.Duration(mrand.Int64N(int64(50*time.Millisecond)))) }
	switch n % 3 {
	case 0, 1:
		nc, err := s.dialTCP(g)
		if err != nil {
			return s.failed("", err)
		}
		what := "RST after connect"
		if n%3 == 1 {
			req := wsclient.UpgradeRequest(s.spec.Addr, wsclient.UpgradeKey())
			nc.SetWriteDeadline(s.until(time.Second))
			nc.Write([]byte(req[:len(req)/2]))
			what = "RST mid-handshake"
		}
		pause()
		abort(nc)
		return soakOutcome{kind: kindClient, how: what}
	default:
		c, o, ok := s.upgrade(g, 0)
		if !ok {
			return o
		}
		payload := make([]byte, 4096)
		f := wsclient.AppendFrame(nil, wsclient.OpBinary, payload, true)
		c.NC.SetWriteDeadline(s.until(time.Second))
		c.WriteRaw(f[:len(f)-3000])
		pause()
		abort(c.NC)
		return soakOutcome{kind: kindClient, how: "RST mid-frame"}
	}
}

// 7. invalid: one protocol error per connection, in turn, each with the
// close code RFC 6455 gives it. After the server's Close, half of them
// answer with a FIN at once; the others stay silent, so the server has to
// drop them at its close timeout.
func (s *soaker) invalid(g, n int) soakOutcome {
	c, o, ok := s.upgrade(g, 0)
	if !ok {
		return o
	}
	defer c.Close()
	s.open[classInvalid].Add(1)
	defer s.open[classInvalid].Add(-1)
	var f []byte
	var want int
	var what string
	switch n % 3 {
	case 0:
		// [RFC6455 5.1]: the server MUST close the connection upon
		// receiving a frame that is not masked (1002).
		f, want, what = wsclient.AppendFrame(nil, wsclient.OpText, []byte("hello"), false), 1002, "unmasked"
	case 1:
		// [RFC6455 5.2]: opcodes 0x3-0x7 are reserved; receiving one fails the connection (1002).
		f, want, what = wsclient.AppendFrame(nil, 0x3, []byte("xyz"), true), 1002, "opcode 3"
	default:
		// [RFC6455 8.1]: text that is not valid UTF-8 fails the connection (1007).
		f, want, what = wsclient.AppendFrame(nil, wsclient.OpText, []byte{'o', 'k', 0xFF, 0xFE, 0xFD}, true), 1007, "bad UTF-8"
	}
	var onClose func()
	if n%2 == 0 {
		onClose = func() { c.NC.(*net.TCPConn).CloseWrite() }
	}
	ends := watchWS(c, true, s.until(s.ss.Hold), onClose)
	t0 := time.Now()
	c.NC.SetWriteDeadline(s.until(time.Second))
	c.WriteRaw(f)
	e := <-ends
	suffix := fmt.Sprintf(" (%s; expected %d)", what, want)
	if e.code == want {
		suffix = fmt.Sprintf(" (%s, as expected)", what)
	}
	return s.wsOutcome(e, t0, suffix)
}

// 8. idle: upgraded, then silent: it reads (so it sees the server's pings and
// Close) but never answers a ping nor the Close. The server should ping
// after -idle-timeout, send Close 1001 after as long again, and drop it at
// its close timeout.
func (s *soaker) idle(g int) soakOutcome {
	c, o, ok := s.upgrade(g, 0)
	if !ok {
		return o
	}
	defer c.Close()
	s.open[classIdle].Add(1)
	defer s.open[classIdle].Add(-1)
	t0 := time.Now()
	e := <-watchWS(c, false, s.until(s.ss.Hold), nil)
	what := " (no ping)"
	if e.pings > 0 {
		what = " (after a ping)"
	}
	return s.wsOutcome(e, t0, what)
}

// stallFrame is the stall client's echo request payload: 60,000 bytes, as
// in the server's kernel tests (server/kernel_linux_test.go); the second
// echo already passes the default -max-outbound of 64 KiB. Read only.
var stallFrame = make([]byte, 60000)

// 9. stall: SO_RCVBUF 2 KiB (set before connect, so the window never grows),
// the upgrade, -stall-burst of 60,000-byte masked binary echo requests,
// then neither a read nor a write: the socket stays open until the server
// ends the connection, or -hold. Its window is shut, so the echoes pile up
// on the server's side, past -max-outbound; and a FIN queued behind them
// never leaves. A server that gives up with a graceful close leaves the
// kernel an orphan in FIN-WAIT-1 holding its whole send buffer, alive for
// as long as this client answers the zero-window probes, which it does
// while its socket is open. A sound server resets it (SO_LINGER 0) when it
// gives up: after its Close 1008, at its close timeout.
//
// Reading would open the window, so the client watches its own socket's
// TCP state (TCP_INFO): CLOSE after the server's RST, CLOSE_WAIT after a
// FIN. It waits at least -close-timeout + -stall-slack from the burst's
// start, even past the window's end: a connection the server never lets go
// is what this looks for.
func (s *soaker) stall(g int) soakOutcome {
	c, o, ok := s.upgrade(g, 2048)
	if !ok {
		return o
	}
	defer c.Close()
	s.open[classStall].Add(1)
	defer s.open[classStall].Add(-1)
	limit := s.ss.stallLimit()
	t0 := time.Now()
	bound := t0.Add(max(limit, min(s.ss.Hold, time.Until(s.end))))
	c.NC.SetWriteDeadline(bound)
	for sent := 0; sent < s.ss.StallBurst; sent += len(stallFrame) {
		if err := c.WriteFrame(wsclient.OpBinary, stallFrame); err != nil {
			if isTimeout(err) {
				break // the server stopped taking the burst: see whether it ends it
			}
			// The server ended it while we were still sending.
			return stallEnded(endHow(err)+" during the burst", time.Since(t0), limit)
		}
	}
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	for {
		st, err := wsclient.SocketState(c.NC)
		if err != nil {
			return soakOutcome{kind: kindError, how: "TCP_INFO: " + wsclient.ErrClass(err)}
		}
		if st != wsclient.StateEstablished {
			return stallEnded(stallHow(st)+" while stalled", time.Since(t0), limit)
		}
		if !time.Now().Before(bound) {
			return soakOutcome{kind: kindGaveUp, how: "still ESTABLISHED when the client gave up (the server never let go)"}
		}
		<-tk.C
	}
}

// stallHow names what ended a stall connection, from the client socket's
// state: the client neither closed nor sent, so CLOSE means an RST came.
func stallHow(st wsclient.TCPState) string {
	switch st {
	case wsclient.StateClose:
		return "RST"
	case wsclient.StateCloseWait:
		return "FIN"
	}
	return "TCP " + st.String()
}

// stallEnded is the outcome of a stall connection the server ended after
// (from the burst's start); later than limit is late.
func stallEnded(how string, after, limit time.Duration) soakOutcome {
	o := soakOutcome{kind: kindServer, how: how, after: after}
	if after > limit {
		o.how += fmt.Sprintf(", later than %v", limit)
		o.late = true
	}
	return o
}
