//go:build linux

package server

// Tests with clients that misbehave: clients that never read, trickle their
// frames a byte at a time, reset in the middle of a frame, vanish and get
// their descriptor number reused, storm the listener, go silent, or send the
// largest allowed message. Every test uses real loopback sockets and a read
// deadline on every read. The helpers here are prefixed mb; the raw client
// (rawDial, rawFrame, rawRead, ...) and the sc* helpers come from the other
// test files of the package.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	gorilla "github.com/gorilla/websocket"
)

// mbDial opens a TCP connection to addr with SO_RCVBUF (and SO_SNDBUF) set
// before connect, so the window advertised in the SYN already reflects them
// (0 leaves the kernel default and its autotuning). The bufio reader has
// bufSize bytes. The connection is closed when the test ends.
func mbDial(t testing.TB, addr string, rcvbuf, sndbuf, bufSize int) *rawConn {
	t.Helper()
	nc, err := mbDialErr(addr, rcvbuf, sndbuf, 0)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReaderSize(nc, bufSize)}
}

// mbDialSlow dials a client that will not read: a 4 KiB SO_RCVBUF, so its
// window closes quickly, and an MSS of 1460 as on an Ethernet path (on
// loopback the MSS is about 64 KiB, which makes the server's socket
// autotune its send buffer to megabytes at once).
func mbDialSlow(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := mbDialErr(addr, 4096, 0, 1460)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReaderSize(nc, 4096)}
}

func mbDialErr(addr string, rcvbuf, sndbuf, mss int) (net.Conn, error) {
	d := net.Dialer{
		Timeout: rawTimeout,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				if rcvbuf > 0 {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
				}
				if serr == nil && sndbuf > 0 {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, sndbuf)
				}
				if serr == nil && mss > 0 {
					serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, mss)
				}
			})
			return errors.Join(err, serr)
		},
	}
	return d.Dial("tcp", addr)
}

// mbUpgrade sends the upgrade request on rc and reads the 101 and the
// greeting (test goroutine only).
func mbUpgrade(rc *rawConn) {
	rc.t.Helper()
	rc.write([]byte(rawUpgradeRequest()))
	rc.expectUpgraded(rawKey)
	rc.expectGreeting()
}

// mbUpgradeErr is mbUpgrade for goroutines other than the test's.
func mbUpgradeErr(rc *rawConn) error {
	rc.nc.SetWriteDeadline(time.Now().Add(rawTimeout))
	if _, err := rc.nc.Write([]byte(rawUpgradeRequest())); err != nil {
		return err
	}
	r, err := rc.readResponse(rawTimeout)
	if err != nil {
		return err
	}
	if r.status != 101 {
		return fmt.Errorf("upgrade answered %q", r.line)
	}
	f, err := rc.rawRead(rawTimeout)
	if err != nil {
		return fmt.Errorf("reading the greeting: %w", err)
	}
	if f.op != rawOpText || !f.fin || !bytes.Equal(f.payload, rawGreeting) {
		return fmt.Errorf("first frame %v; want the greeting", f)
	}
	return nil
}

// mbWrite writes b on nc with a deadline; for goroutines.
func mbWrite(nc net.Conn, b []byte) error {
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := nc.Write(b)
	return err
}

// mbServerConn returns the server's conn struct for the client connection
// nc (the open one whose socket's peer is nc's local address), waiting up
// to 2 s for it to appear; nil when it does not.
func mbServerConn(s *Server, nc net.Conn) *conn {
	want := nc.LocalAddr().(*net.TCPAddr)
	deadline := time.Now().Add(2 * time.Second)
	for {
		var found *conn
		s.table.each(func(c *conn) {
			if found != nil {
				return
			}
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
			sa, err := syscall.Getpeername(c.fd)
			if err != nil {
				return
			}
			if in4, ok := sa.(*syscall.SockaddrInet4); ok && in4.Port == want.Port && net.IP(in4.Addr[:]).Equal(want.IP) {
				found = c
			}
		})
		if found != nil || time.Now().After(deadline) {
			return found
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mbPending reads c's outbound queue length and closed flag under c.mu.
func mbPending(c *conn) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending(), c.closed
}

// mbGen reads c.gen under c.mu (table.acquire writes gen before it takes
// c.mu, so reading under the lock is ordered after that write).
func mbGen(c *conn) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// mbInq reports the bytes waiting unread in the receive queue of the
// server's socket fd (the server has read everything when it is 0).
func mbInq(fd int) int {
	var n int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	if errno != 0 {
		return -1
	}
	return int(n)
}

// mbOutq reports the bytes in the send queue of the server's socket fd
// (not yet sent or not yet acknowledged).
func mbOutq(fd int) int {
	var n int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	if errno != 0 {
		return -1
	}
	return int(n)
}

// mbClientOutq reports the bytes in the send queue of the client socket nc.
func mbClientOutq(nc net.Conn) int {
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	rc.Control(func(fd uintptr) { n = mbOutq(int(fd)) })
	return n
}

// mbWaitConsumed waits until the server has read everything the client nc
// sent (the client's send queue and the server socket fd's receive queue
// are empty), then gives the worker a moment to act on it.
func mbWaitConsumed(t testing.TB, nc net.Conn, fd int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for mbClientOutq(nc) != 0 || mbInq(fd) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not read what was sent within 5s (%d bytes unsent, %d unread)", mbClientOutq(nc), mbInq(fd))
		}
		time.Sleep(100 * time.Microsecond)
	}
	time.Sleep(200 * time.Microsecond)
}

var (
	mbFillBig = rawFrame(rawOpBinary, true, make([]byte, 64<<10), true)
	mbFillMid = rawFrame(rawOpBinary, true, make([]byte, 16<<10), true)
)

// mbFillOutbound makes the server queue at least target bytes for a client
// that does not read, without passing MaxOutbound. It sends binary messages
// one at a time, each read by the server before the next goes, until the
// server's queue for sc holds target bytes; a message is only sent while
// the queue is below target, so the queue ends below target plus one echo.
// Messages are 64 KiB while the server socket's send queue is well below
// 60% of its SO_SNDBUF (the kernel counts skb overhead against SO_SNDBUF:
// a loopback socket stops taking bytes at about 70% of it in payload), 16
// KiB after that. With settle > 0 the queue must still hold target bytes
// settle later (the kernel's send buffer can grow a little after the
// window closes and take part of the queue); if not, filling goes on. It
// returns the payload bytes sent.
func mbFillOutbound(t testing.TB, rc *rawConn, sc *conn, target int, settle time.Duration) int {
	t.Helper()
	const margin = 128 << 10
	sent := 0
	for sent < 64<<20 {
		sndbuf, err := syscall.GetsockoptInt(sc.fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		if err != nil {
			t.Fatalf("SO_SNDBUF of the server socket: %v", err)
		}
		f, n := mbFillMid, 16<<10
		if mbOutq(sc.fd)+len(mbFillBig)+margin < sndbuf*6/10 {
			f, n = mbFillBig, 64<<10
		}
		rc.write(f)
		sent += n
		mbWaitConsumed(t, rc.nc, sc.fd)
		p, closed := mbPending(sc)
		if p >= target && settle > 0 {
			time.Sleep(settle)
			p, closed = mbPending(sc)
		}
		if closed {
			t.Fatalf("server closed the conn after %d bytes while filling", sent)
		}
		if p >= target {
			return sent
		}
	}
	t.Fatalf("the server's queue is still below %d bytes after %d bytes sent", target, sent)
	return sent
}

// mbCloseCode returns the status code of a Close frame body (0 if none).
func mbCloseCode(p []byte) uint16 {
	if len(p) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(p)
}

func mbIsTimePayload(p []byte) bool {
	if len(p) != len(TimeLayout) {
		return false
	}
	_, err := time.Parse(TimeLayout, string(p))
	return err == nil
}

// mbIsReset reports whether err is what reading or writing a socket the
// peer closed returns: EOF, ECONNRESET, EPIPE.
func mbIsReset(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// mbDurations summarises a sample of durations.
func mbDurations(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	pct := func(p float64) time.Duration {
		return s[min(int(p*float64(len(s))), len(s)-1)].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("n=%d min=%v p50=%v p90=%v p99=%v max=%v", len(s), pct(0), pct(0.5), pct(0.9), pct(0.99), s[len(s)-1].Round(100*time.Microsecond))
}

// mbReader reads a raw client continuously in its own goroutine: it
// records the arrival of every time push and passes every other frame on.
type mbReader struct {
	rc     *rawConn
	stop   atomic.Bool
	done   chan struct{}
	frames chan rawIn
	err    error // set before done is closed

	mu     sync.Mutex
	pushes []time.Time
}

func mbStartReader(rc *rawConn) *mbReader {
	r := &mbReader{rc: rc, done: make(chan struct{}), frames: make(chan rawIn, 64)}
	go func() {
		defer close(r.done)
		for !r.stop.Load() {
			f, err := rc.rawRead(2 * time.Second)
			if err != nil {
				if !r.stop.Load() {
					r.err = err
				}
				return
			}
			if rawIsTimePush(f) {
				r.mu.Lock()
				r.pushes = append(r.pushes, time.Now())
				r.mu.Unlock()
				continue
			}
			select {
			case r.frames <- f:
			default:
				r.err = fmt.Errorf("frame %v not consumed", f)
				return
			}
		}
	}()
	return r
}

// gaps returns the intervals between pushes that arrived in [from, to].
func (r *mbReader) gaps(from, to time.Time) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var g []time.Duration
	var prev time.Time
	for _, at := range r.pushes {
		if at.Before(from) || at.After(to) {
			continue
		}
		if !prev.IsZero() {
			g = append(g, at.Sub(prev))
		}
		prev = at
	}
	return g
}

// echo sends a text message and waits for its echo through the reader.
func (r *mbReader) echo(t testing.TB, payload []byte) {
	t.Helper()
	r.rc.write(rawFrame(rawOpText, true, payload, true))
	select {
	case f := <-r.frames:
		if f.op != rawOpText || !f.fin || !bytes.Equal(f.payload, payload) {
			t.Fatalf("echo: got %v; want text %q", f, payload)
		}
	case <-r.done:
		t.Fatalf("reader ended while waiting for an echo: %v", r.err)
	case <-time.After(rawTimeout):
		t.Fatalf("no echo of %q within %v", payload, rawTimeout)
	}
}

func (r *mbReader) close(t testing.TB) {
	t.Helper()
	r.stop.Store(true)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("reader goroutine did not stop")
	}
	if r.err != nil {
		t.Errorf("normal client's reader: %v", r.err)
	}
}

// mbCheckGaps checks the push gaps of a normal client. A wheel held up by
// a slow client would deliver no pushes at all, or only with gaps of
// seconds; on a busy machine (these tests share 2 cores with other work)
// a few gaps of a few intervals are scheduling noise, and the wheel
// catches up. So: at least half the expected pushes, no gap of 1 s or
// more, and at most 10% of the gaps (but at least 1) of 3× the interval or
// more.
func mbCheckGaps(t *testing.T, what string, gaps []time.Duration, interval time.Duration, window time.Duration) {
	t.Helper()
	long := 0
	for _, g := range gaps {
		if g >= 3*interval {
			long++
		}
		if g >= time.Second {
			t.Errorf("%s: a gap of %v between time pushes; want < 1s", what, g)
		}
	}
	t.Logf("%s: push gaps %s; %d of them >= %v", what, mbDurations(gaps), long, 3*interval)
	if want := int(window/interval) / 2; len(gaps) < want {
		t.Errorf("%s: only %d pushes in %v; want at least %d", what, len(gaps)+1, window, want)
	}
	if long > max(1, len(gaps)/10) {
		t.Errorf("%s: %d of %d gaps between time pushes were >= %v; want at most %d", what, long, len(gaps), 3*interval, max(1, len(gaps)/10))
	}
}

// TestSlowReaderBounded: a client that never reads costs the server a
// bounded queue, loses its time pushes, is closed when an echo would pass
// MaxOutbound, and never holds up the pushes and echoes of other clients.
func TestSlowReaderBounded(t *testing.T) {
	const (
		interval    = 50 * time.Millisecond
		maxOutbound = 64 << 10
		msgSize     = 4 << 10
	)
	s, addr := startServer(t, Config{MaxOutbound: maxOutbound, PushInterval: interval})

	slow := mbDialSlow(t, addr)
	mbUpgrade(slow)
	sc := mbServerConn(s, slow.nc)
	if sc == nil {
		t.Fatal("cannot find the slow client's conn in the table")
	}
	normal := rawHandshake(t, addr)
	nr := mbStartReader(normal)
	defer nr.close(t)

	// (c) sample every queue in the table throughout.
	var (
		maxPending atomic.Int64
		samples    atomic.Int64
		stopSample = make(chan struct{})
		sampled    = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		for {
			s.table.each(func(c *conn) {
				p, _ := mbPending(c)
				if int64(p) > maxPending.Load() {
					maxPending.Store(int64(p))
				}
			})
			samples.Add(1)
			select {
			case <-stopSample:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	defer func() {
		close(stopSample)
		<-sampled
		limit := maxOutbound + msgSize + 14
		t.Logf("(c) largest outbound queue seen in %d samples of the table: %d bytes (limit %d)",
			samples.Load(), maxPending.Load(), limit)
		if maxPending.Load() > int64(limit) {
			t.Errorf("a queue held %d bytes; want at most MaxOutbound + one frame = %d", maxPending.Load(), limit)
		}
	}()

	// (a) Fill the slow client's socket until the server queues for it,
	// then let it idle.
	filled := mbFillOutbound(t, slow, sc, 24<<10, 300*time.Millisecond)
	p0, _ := mbPending(sc)
	sndbuf, _ := syscall.GetsockoptInt(sc.fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	t.Logf("(a) the server queued for the slow client after %d bytes of echo (%d bytes queued; server socket SO_SNDBUF %d)", filled, p0, sndbuf)
	st0 := s.Stats()
	idleFrom := time.Now()
	time.Sleep(time.Second)
	idleTo := time.Now()
	st1 := s.Stats()
	p1, closed := mbPending(sc)
	skipped := st1.PushesSkipped - st0.PushesSkipped
	t.Logf("(a) idle 1 s: pushes skipped %d, slow client's queue %d bytes, stats %+v", skipped, p1, st1)
	if closed || st1.Open != 2 {
		t.Fatalf("(a) the idle slow reader was closed (closed=%v, Open=%d); want it kept", closed, st1.Open)
	}
	if skipped < 5 {
		t.Errorf("(a) %d pushes skipped in 1 s of a full socket at one push per %v; want >= 5", skipped, interval)
	}
	if p1 == 0 || p1 > p0+len(TimeLayout)+2 {
		t.Errorf("(a) slow client's queue went from %d to %d bytes while idle; want it non-empty, grown by at most one time frame", p0, p1)
	}
	if st1.Overflows != 0 {
		t.Errorf("(a) Overflows = %d while only idling; want 0", st1.Overflows)
	}
	mbCheckGaps(t, "(a) normal client while the slow one idles", nr.gaps(idleFrom, idleTo), interval, time.Second)
	nr.echo(t, []byte("after idle"))

	// (b) The slow client keeps sending 4 KiB messages without reading:
	// the server must close it once its queue would pass MaxOutbound.
	msg := make([]byte, msgSize)
	busyFrom := time.Now()
	var sent int
	var werr error
	for time.Since(busyFrom) < 5*time.Second && s.Stats().Overflows == 0 {
		if werr = mbWrite(slow.nc, rawFrame(rawOpBinary, true, msg, true)); werr != nil {
			break
		}
		sent += msgSize
		if sent%(16*msgSize) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(t, 3*time.Second, "Stats().Overflows >= 1", func() bool { return s.Stats().Overflows >= 1 })
	waitFor(t, 5*time.Second, "the slow client's conn closed", func() bool { return s.Stats().Open == 1 })
	closedAt := time.Now()
	n, err := slow.drainToEOF(5 * time.Second)
	t.Logf("(b) closed after %d more bytes sent (write error: %v) in %v; the client then read %d bytes and %v",
		sent, werr, closedAt.Sub(busyFrom).Round(time.Millisecond), n, err)
	if !mbIsReset(err) {
		t.Errorf("(b) reading the closed slow client: %v; want EOF or a reset", err)
	}
	if werr != nil && !mbIsReset(werr) {
		t.Errorf("(b) write error %v; want EPIPE or ECONNRESET", werr)
	}
	st2 := s.Stats()
	t.Logf("(b) stats %+v", st2)
	if st2.Overflows != 1 {
		t.Errorf("(b) Overflows = %d; want 1", st2.Overflows)
	}
	// Let the normal client collect pushes for a while after the close too.
	time.Sleep(300 * time.Millisecond)
	mbCheckGaps(t, "(b) normal client while the slow one floods", nr.gaps(busyFrom, time.Now()), interval, time.Since(busyFrom))
	nr.echo(t, []byte("still echoing"))
}

// TestTrickleClientsDoNotBlockWorkers: clients that send a frame one byte at
// a time cost buffers, not workers.
func TestTrickleClientsDoNotBlockWorkers(t *testing.T) {
	const (
		tricklers = 8
		size      = 100
		pause     = 10 * time.Millisecond
		echoes    = 50
	)
	_, addr := startServer(t, Config{Workers: 2, PushInterval: time.Minute})
	conns := make([]*rawConn, tricklers)
	payloads := make([][]byte, tricklers)
	for i := range conns {
		conns[i] = rawHandshake(t, addr)
		payloads[i] = []byte(fmt.Sprintf("trickler %d %s", i, strings.Repeat("x", size)))[:size]
	}
	normal := rawHandshake(t, addr)

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, tricklers)
	echoDelay := make([]time.Duration, tricklers) // last byte sent -> echo read
	var lastDone atomic.Int64
	for i, rc := range conns {
		frame := rawFrame(rawOpText, true, payloads[i], true)
		wg.Go(func() {
			for j := range frame {
				if err := mbWrite(rc.nc, frame[j:j+1]); err != nil {
					errs[i] = fmt.Errorf("trickler %d, byte %d: %w", i, j, err)
					return
				}
				if j < len(frame)-1 {
					time.Sleep(pause)
				}
			}
			sentAt := time.Now()
			lastDone.Store(int64(sentAt.Sub(start)))
			f, err := rc.rawRead(5 * time.Second)
			for err == nil && rawIsTimePush(f) {
				f, err = rc.rawRead(5 * time.Second)
			}
			echoDelay[i] = time.Since(sentAt)
			if err != nil || f.op != rawOpText || !f.fin || !bytes.Equal(f.payload, payloads[i]) {
				errs[i] = fmt.Errorf("trickler %d: echo %v, %v; want text %q", i, f, err, payloads[i])
			}
		})
	}
	time.Sleep(3 * pause)

	var lat []time.Duration
	during := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for k := range echoes {
		p := rawBytes(rng, 1+k*10)
		t0 := time.Now()
		normal.echo(rawOpBinary, p)
		lat = append(lat, time.Since(t0))
		if lastDone.Load() == 0 {
			during++
		}
		time.Sleep(2 * pause)
	}
	wg.Wait()
	t.Logf("echo round trips while %d clients trickle (2 workers): %s; %d of %d completed while all tricklers were still sending; trickling took %v",
		tricklers, mbDurations(lat), during, echoes, time.Duration(lastDone.Load()).Round(time.Millisecond))
	// Workers stuck on tricklers would delay nearly every echo until the
	// trickling ends (about 1 s). On a busy machine one or two round trips
	// may take longer than 200ms for scheduling reasons alone.
	slow := 0
	for k, d := range lat {
		if d >= 200*time.Millisecond {
			slow++
			t.Logf("echo %d took %v", k, d)
		}
		if d >= time.Second {
			t.Errorf("echo %d took %v; want < 200ms", k, d)
		}
	}
	if slow > 2 {
		t.Errorf("%d of %d echoes took >= 200ms; want at most 2", slow, echoes)
	}
	if during < echoes/2 {
		t.Errorf("only %d echoes overlapped the trickling; the test did not test much", during)
	}
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// A trickler's echo is due as soon as its last byte arrives; if the
	// workers were held by other connections it would wait for them.
	t.Logf("tricklers' echoes after their last byte: %s", mbDurations(echoDelay))
	for i, d := range echoDelay {
		if d >= time.Second {
			t.Errorf("trickler %d got its echo %v after its last byte; want well under 1s", i, d)
		}
	}
}

// TestResetMidFrameNoLeak: connections reset while the server holds a
// partial frame or a partial message for them give back every buffer and
// every descriptor.
func TestResetMidFrameNoLeak(t *testing.T) {
	const n = 200
	s, addr := startServer(t, Config{PushInterval: time.Minute})
	probe := rawHandshake(t, addr)
	probe.nc.Close()
	waitFor(t, 5*time.Second, "probe released", func() bool { return s.Stats().Live == 0 })
	before := scCountFDs(t)

	conns := make([]*scConn, 2*n)
	t.Cleanup(func() {
		for _, sc := range conns {
			if sc != nil {
				sc.c.Close()
			}
		}
	})
	payload := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	err := scParallel(2*n, 8, func(i int) error {
		sc, err := scDial(addr, 10*time.Second)
		if err != nil {
			return err
		}
		conns[i] = sc
		if err := scGreeting(sc, 10*time.Second); err != nil {
			return err
		}
		var b []byte
		if i < n {
			// Header and half of a 1000-byte frame: a pooled frame buffer.
			f := scFrame(true, scOpBinary, payload)
			b = f[:len(f)-500]
		} else {
			// A complete first fragment (a pooled message buffer), then
			// half of a continuation (a frame buffer too).
			b = scFrame(false, scOpText, payload[:100])
			f := scFrame(true, 0, payload)
			b = append(b, f[:len(f)-500]...)
		}
		sc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, err = sc.c.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Open != 2*n {
		t.Fatalf("Open = %d; want %d", st.Open, 2*n)
	}
	// Wait until the server has read every partial frame.
	waitFor(t, 10*time.Second, "the server to read every partial frame", func() bool {
		unread := 0
		s.table.each(func(c *conn) {
			if _, closed := mbPending(c); !closed && mbInq(c.fd) > 0 {
				unread++
			}
		})
		return unread == 0
	})
	time.Sleep(50 * time.Millisecond)
	for i, sc := range conns {
		sc.c.(*net.TCPConn).SetLinger(0)
		sc.c.Close()
		conns[i] = nil
	}
	waitFor(t, 10*time.Second, "Stats().Live == 0", func() bool { return s.Stats().Live == 0 })
	if st := s.Stats(); st.Open != 0 {
		t.Errorf("Open = %d; want 0", st.Open)
	}

	// Live == 0 was read atomically after every release, so the read-side
	// fields the workers wrote are visible here.
	free, held := 0, 0
	s.table.each(func(c *conn) {
		if c.phase != phaseFree {
			t.Errorf("fd %d: phase %d with Live == 0", c.fd, c.phase)
			return
		}
		free++
		c.mu.Lock()
		out := c.out
		c.mu.Unlock()
		if c.frame != nil || c.msg != nil || c.hs != nil || out != nil {
			held++
			t.Errorf("fd %d (gen %d): free conn still holds buffers: frame=%v msg=%v hs=%v out=%v inFrame=%v msgOp=%v",
				c.fd, c.gen, c.frame != nil, c.msg != nil, c.hs != nil, out != nil, c.inFrame, c.msgOp)
		}
	})
	t.Logf("%d free conn structs checked, %d holding a buffer", free, held)
	var after int
	waitFor(t, 5*time.Second, "descriptor count back to the baseline", func() bool {
		after = scCountFDs(t)
		return after == before
	})
	t.Logf("fds before %d, after %d", before, after)
}

// TestFDReuseNoCrossTalk: a client that dies with bytes queued for it and a
// partial frame buffered must leave nothing for the next connection that
// gets its descriptor number.
func TestFDReuseNoCrossTalk(t *testing.T) {
	const iterations = 50
	s, addr := startServer(t, Config{PushInterval: time.Minute, CloseTimeout: 500 * time.Millisecond})
	var (
		immediate int // B got A's struct
		reused    int // any iteration's conn struct had been used before
		filled    []time.Duration
	)
	seen := map[*conn]uint32{} // struct -> gen last observed
	note := func(c *conn, g uint32) {
		if old, ok := seen[c]; ok {
			reused++
			if g <= old {
				t.Errorf("fd %d: struct reused with gen %d after gen %d; want it increased", c.fd, g, old)
			}
		}
		seen[c] = g
	}
	for it := range iterations {
		a := mbDialSlow(t, addr)
		mbUpgrade(a)
		ac := mbServerConn(s, a.nc)
		if ac == nil {
			t.Fatalf("iteration %d: A's conn not found in the table", it)
		}
		agen := mbGen(ac)
		note(ac, agen)
		t0 := time.Now()
		// 16 KiB queued and still there 10 ms later: the kernel may grow
		// the socket's send buffer a little after its window closed (and
		// take a few queued bytes), never 16 KiB.
		mbFillOutbound(t, a, ac, 16<<10, 10*time.Millisecond)
		filled = append(filled, time.Since(t0))
		// Half of a 1000-byte frame, read by the server before the reset.
		f := rawFrame(rawOpBinary, true, bytes.Repeat([]byte{'A'}, 1000), true)
		a.write(f[:len(f)-700])
		mbWaitConsumed(t, a.nc, ac.fd)
		if p, closed := mbPending(ac); closed || p == 0 {
			t.Fatalf("iteration %d: A's queue %d bytes, closed=%v; want bytes queued on an open conn", it, p, closed)
		}
		a.nc.(*net.TCPConn).SetLinger(0)
		a.nc.Close()

		b := rawDial(t, addr)
		b.write([]byte(rawUpgradeRequest()))
		r, err := b.readResponse(rawTimeout)
		if err != nil || r.status != 101 || r.get("Sec-WebSocket-Accept") != rawAccept(rawKey) {
			msg := fmt.Sprint(err)
			if len(msg) > 300 {
				msg = msg[:150] + " ... " + msg[len(msg)-150:]
			}
			t.Fatalf("iteration %d: B's handshake response %q (error %s); want exactly a 101 with the right accept key", it, rawTrunc([]byte(r.line)), msg)
		}
		g, err := b.rawRead(rawTimeout)
		if err != nil || g.op != rawOpText || !g.fin || !bytes.Equal(g.payload, rawGreeting) || len(g.hdr) != 2 {
			t.Fatalf("iteration %d: first frame on B: %v (err %v); want the greeting", it, g, err)
		}
		bc := mbServerConn(s, b.nc)
		if bc == nil {
			t.Fatalf("iteration %d: B's conn not found in the table", it)
		}
		bgen := mbGen(bc)
		if bc == ac {
			immediate++
		}
		note(bc, bgen)
		b.write(rawFrame(rawOpText, true, []byte("b-only"), true))
		e := b.next() // skips well-formed time pushes only
		if e.op != rawOpText || !e.fin || string(e.payload) != "b-only" {
			t.Fatalf("iteration %d: B got %v; want the echo of b-only", it, e)
		}
		// Nothing else may follow (but a time push).
		for {
			x, err := b.rawRead(30 * time.Millisecond)
			if err != nil {
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					t.Fatalf("iteration %d: B after the echo: %v; want silence", it, err)
				}
				break
			}
			if !rawIsTimePush(x) {
				t.Fatalf("iteration %d: B got an extra frame %v", it, x)
			}
		}
		b.nc.Close()
		waitFor(t, 5*time.Second, "A and B released", func() bool { return s.Stats().Live == 0 })
	}
	t.Logf("%d iterations: B took A's conn struct (fd reused at once) %d times; a conn struct was reused %d times; %d distinct structs; time to fill A's socket %s",
		iterations, immediate, reused, len(seen), mbDurations(filled))
	if reused == 0 {
		t.Errorf("no conn struct was ever reused; the test did not test fd reuse")
	}
}

// TestConnectCloseStorm: many connections that upgrade and vanish, vanish
// mid-handshake, or close cleanly, leave the server with nothing held.
func TestConnectCloseStorm(t *testing.T) {
	const (
		goroutines = 20
		iterations = 100
	)
	s, addr := startServer(t, Config{PushInterval: 100 * time.Millisecond, HandshakeTimeout: 2 * time.Second, CloseTimeout: time.Second})
	probe := rawHandshake(t, addr)
	probe.nc.Close()
	waitFor(t, 5*time.Second, "probe released", func() bool { return s.Stats().Live == 0 })
	before := scCountFDs(t)

	var kinds [4]atomic.Int64
	start := time.Now()
	err := scParallel(goroutines*iterations, goroutines, func(i int) error {
		kind := i % 4
		kinds[kind].Add(1)
		switch kind {
		case 0, 1: // upgrade, then close at once (the greeting unread)
			sc, err := scDial(addr, 10*time.Second)
			if err != nil {
				return err
			}
			if i%8 == 0 {
				sc.c.(*net.TCPConn).SetLinger(0)
			}
			return sc.c.Close()
		case 2: // close before the handshake is complete
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return err
			}
			if i%8 == 2 {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: webs")); err != nil {
					return err
				}
			} else {
				c.(*net.TCPConn).SetLinger(0)
			}
			return c.Close()
		default: // clean close handshake
			sc, err := scDial(addr, 10*time.Second)
			if err != nil {
				return err
			}
			defer sc.c.Close()
			if err := scGreeting(sc, 10*time.Second); err != nil {
				return err
			}
			if err := scWriteFrame(sc, true, scOpClose, rawCloseBody(1000, "bye"), 5*time.Second); err != nil {
				return err
			}
			op, p, err := scReadMessage(sc, 10*time.Second)
			if err != nil {
				return fmt.Errorf("waiting for the server's Close: %w", err)
			}
			if op != scOpClose || mbCloseCode(p) != 1000 {
				return fmt.Errorf("got op %#x %q; want Close 1000", op, p)
			}
			sc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := io.Copy(io.Discard, sc.br); err != nil || n != 0 {
				return fmt.Errorf("after the Close: %d bytes, %v; want EOF", n, err)
			}
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d connections (kinds %d/%d/%d/%d) in %v", goroutines*iterations,
		kinds[0].Load(), kinds[1].Load(), kinds[2].Load(), kinds[3].Load(), time.Since(start).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "every connection accepted", func() bool {
		return s.Stats().Accepted >= goroutines*iterations+1
	})
	waitFor(t, 10*time.Second, "Stats().Live == 0", func() bool { return s.Stats().Live == 0 })
	st := s.Stats()
	t.Logf("stats %+v, all released %v after start", st, time.Since(start).Round(time.Millisecond))
	if st.Open != 0 {
		t.Errorf("Open = %d; want 0", st.Open)
	}
	var after int
	waitFor(t, 5*time.Second, "descriptor count back to the baseline", func() bool {
		after = scCountFDs(t)
		return after == before
	})
	rc := rawHandshake(t, addr)
	rc.echo(rawOpText, []byte("after the storm"))
	rc.write(rawFrame(rawOpClose, true, rawCloseBody(1000, ""), true))
	rc.expectClose(1000)
}

// TestHalfOpenIdleTimeout: a silent client is pinged after IdleTimeout and
// closed with 1001 after another; a client that answers is kept; with the
// timeout disabled nobody is pinged.
func TestHalfOpenIdleTimeout(t *testing.T) {
	const (
		idle     = 300 * time.Millisecond
		interval = 50 * time.Millisecond
	)
	s, addr := startServer(t, Config{IdleTimeout: idle, PushInterval: interval, CloseTimeout: time.Second})

	// The client that answers pings, in its own goroutine.
	type answerResult struct {
		pings, pushes int
		err           error
	}
	answered := make(chan answerResult, 1)
	ans := mbDial(t, addr, 0, 0, 4096)
	go func() {
		var r answerResult
		defer func() { answered <- r }()
		if r.err = mbUpgradeErr(ans); r.err != nil {
			return
		}
		until := time.Now().Add(1500 * time.Millisecond)
		for time.Now().Before(until) {
			f, err := ans.rawRead(time.Second)
			if err != nil {
				r.err = err
				return
			}
			switch {
			case rawIsTimePush(f):
				r.pushes++
			case f.op == rawOpPing:
				r.pings++
				if r.err = mbWrite(ans.nc, rawFrame(rawOpPong, true, f.payload, true)); r.err != nil {
					return
				}
			default:
				r.err = fmt.Errorf("unexpected frame %v", f)
				return
			}
		}
		// Still open: it echoes.
		if r.err = mbWrite(ans.nc, rawFrame(rawOpText, true, []byte("alive"), true)); r.err != nil {
			return
		}
		giveUp := time.Now().Add(rawTimeout)
		for {
			if time.Now().After(giveUp) {
				r.err = fmt.Errorf("no echo within %v", rawTimeout)
				return
			}
			f, err := ans.rawRead(rawTimeout)
			if err != nil {
				r.err = fmt.Errorf("waiting for the echo: %w", err)
				return
			}
			switch {
			case rawIsTimePush(f):
			case f.op == rawOpPing:
				r.pings++
				if r.err = mbWrite(ans.nc, rawFrame(rawOpPong, true, f.payload, true)); r.err != nil {
					return
				}
			case f.op == rawOpText && string(f.payload) == "alive":
				return
			default:
				r.err = fmt.Errorf("waiting for the echo: unexpected frame %v", f)
				return
			}
		}
	}()

	// The silent client.
	silent := mbDial(t, addr, 0, 0, 4096)
	silent.write([]byte(rawUpgradeRequest()))
	lastSent := time.Now()
	silent.expectUpgraded(rawKey)
	silent.expectGreeting()
	var pingAt, closeAt time.Time
	pushes := 0
	giveUp := time.Now().Add(5 * time.Second)
	for closeAt.IsZero() {
		if time.Now().After(giveUp) {
			t.Fatalf("silent client: no Close within 5s (ping at %v, %d pushes); want a ping after ~%v and Close 1001 after another",
				pingAt, pushes, idle)
		}
		f, err := silent.rawRead(2 * time.Second)
		if err != nil {
			t.Fatalf("silent client (ping at %v): %v", pingAt, err)
		}
		switch {
		case rawIsTimePush(f):
			pushes++
		case f.op == rawOpPing && pingAt.IsZero():
			pingAt = time.Now()
			if len(f.payload) != 0 || !f.fin {
				t.Errorf("ping %v; want a final ping with no payload", f)
			}
		case f.op == rawOpClose:
			closeAt = time.Now()
			if code := mbCloseCode(f.payload); code != 1001 {
				t.Errorf("Close code %d (%q); want 1001", code, f.payload)
			}
		default:
			t.Fatalf("silent client: unexpected frame %v", f)
		}
	}
	if pingAt.IsZero() {
		t.Fatalf("closed at %v without a ping first", closeAt.Sub(lastSent))
	}
	silent.expectEOF(rawTimeout)
	toPing, toClose := pingAt.Sub(lastSent), closeAt.Sub(pingAt)
	t.Logf("silent client: ping %v after its last byte, Close 1001 %v after the ping, %d pushes before", toPing.Round(time.Millisecond), toClose.Round(time.Millisecond), pushes)
	// The server measures silence on its coarse clock (set by the wheel each
	// tick) at the connection's wheel visit: on a busy machine a late wheel
	// makes the clock stale, so the bounds are loose; a ping at the wrong
	// time altogether (at once, or never) still fails.
	if toPing < idle/2 || toPing > idle+700*time.Millisecond {
		t.Errorf("ping %v after the last byte; want about %v", toPing, idle)
	}
	if toClose < idle/2 || toClose > idle+700*time.Millisecond {
		t.Errorf("Close %v after the ping; want about %v", toClose, idle)
	}

	var r answerResult
	select {
	case r = <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("answering client did not finish")
	}
	t.Logf("answering client: %d pings answered, %d pushes in 1.5 s, then echoed", r.pings, r.pushes)
	if r.err != nil {
		t.Errorf("answering client: %v", r.err)
	}
	if r.pings < 1 {
		t.Errorf("answering client was never pinged in 1.5 s with IdleTimeout %v", idle)
	}
	st := s.Stats()
	t.Logf("stats %+v", st)
	if st.IdlePings < 1 || st.IdleCloses < 1 {
		t.Errorf("IdlePings %d, IdleCloses %d; want both >= 1", st.IdlePings, st.IdleCloses)
	}
	if st.IdleCloses != 1 {
		t.Errorf("IdleCloses %d; want 1 (only the silent client)", st.IdleCloses)
	}

	// Disabled: a silent client gets pushes but never a ping.
	s2, addr2 := startServer(t, Config{IdleTimeout: -1, PushInterval: interval})
	quiet := mbDial(t, addr2, 0, 0, 4096)
	mbUpgrade(quiet)
	until := time.Now().Add(time.Second)
	pushes = 0
	for time.Now().Before(until) {
		f, err := quiet.rawRead(time.Second)
		if err != nil {
			t.Fatalf("client with IdleTimeout disabled: %v", err)
		}
		if !rawIsTimePush(f) {
			t.Fatalf("client with IdleTimeout disabled got %v; want only time pushes", f)
		}
		pushes++
	}
	if pushes < 5 {
		t.Errorf("only %d pushes in 1 s at %v", pushes, interval)
	}
	if st := s2.Stats(); st.IdlePings != 0 || st.IdleCloses != 0 {
		t.Errorf("IdleTimeout disabled: stats %+v; want no idle pings or closes", st)
	}
}

// TestShutdownUnderLoad: Shutdown while 202 clients echo as fast as they
// can sends every one of them Close 1001 and finishes in time.
func TestShutdownUnderLoad(t *testing.T) {
	const (
		raws     = 200
		gorillas = 2
	)
	s, err := New(testConfig(Config{PushInterval: 100 * time.Millisecond, CloseTimeout: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	shut := false
	t.Cleanup(func() {
		if !shut {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.Shutdown(ctx)
		}
	})

	scs := make([]*scConn, raws)
	t.Cleanup(func() {
		for _, sc := range scs {
			if sc != nil {
				sc.c.Close()
			}
		}
	})
	if err := scParallel(raws, 8, func(i int) error {
		sc, err := scDial(addr, 10*time.Second)
		if err != nil {
			return err
		}
		scs[i] = sc
		return scGreeting(sc, 10*time.Second)
	}); err != nil {
		t.Fatal(err)
	}
	gcs := make([]*gorilla.Conn, gorillas)
	for i := range gcs {
		d := gorilla.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		t.Cleanup(func() { c.Close() })
		gcs[i] = c
	}

	counts := make([]atomic.Int64, raws+gorillas)
	results := make(chan error, raws+gorillas)
	for i, sc := range scs {
		go func() { results <- mbEchoUntilClose(sc, uint64(i), &counts[i]) }()
	}
	for i, c := range gcs {
		go func() { results <- mbGorillaEchoUntilClose(c, uint64(i), &counts[raws+i]) }()
	}
	waitFor(t, 15*time.Second, "every client to echo 3 times", func() bool {
		for i := range counts {
			if counts[i].Load() < 3 {
				return false
			}
		}
		return true
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	shut = true
	err = s.Shutdown(ctx)
	took := time.Since(t0)
	if err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if took >= 5*time.Second {
		t.Errorf("Shutdown took %v; want < 5s", took)
	}
	select {
	case err := <-served:
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v; want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return after Shutdown")
	}
	failed := 0
	for range raws + gorillas {
		select {
		case err := <-results:
			if err != nil {
				if failed++; failed <= 10 {
					t.Errorf("client: %v", err)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a client did not finish")
		}
	}
	var total int64
	for i := range counts {
		total += counts[i].Load()
	}
	st := s.Stats()
	t.Logf("Shutdown took %v; %d echoes in all; %d of %d clients failed; stats %+v", took.Round(time.Millisecond), total, failed, raws+gorillas, st)
	if st.Live != 0 || st.Open != 0 {
		t.Errorf("after Shutdown: Live %d, Open %d; want 0", st.Live, st.Open)
	}
}

// mbEchoUntilClose echoes random binary messages on sc until the server's
// Close arrives, which must carry 1001; it answers the Close and expects the
// server to close the connection.
func mbEchoUntilClose(sc *scConn, seed uint64, count *atomic.Int64) error {
	rng := rand.New(rand.NewPCG(seed, 7))
	giveUp := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(giveUp) {
			return fmt.Errorf("no Close after %d echoes in 30s", count.Load())
		}
		payload := rawBytes(rng, 1+rng.IntN(1500))
		werr := scWriteFrame(sc, true, scOpBinary, payload, 5*time.Second)
		// Even when the write failed, the Close may be waiting: read on.
		for {
			_, op, p, err := scReadFrame(sc, 5*time.Second)
			if err != nil {
				return fmt.Errorf("after %d echoes, no Close 1001: %w (write: %v)", count.Load(), err, werr)
			}
			switch {
			case op == scOpClose:
				if code := mbCloseCode(p); code != 1001 {
					return fmt.Errorf("Close code %d (%q); want 1001", code, p)
				}
				scWriteFrame(sc, true, scOpClose, p[:2], 5*time.Second) // the peer may already be gone
				sc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := io.Copy(io.Discard, sc.br); n != 0 || (err != nil && !mbIsReset(err)) {
					return fmt.Errorf("after the Close: %d bytes, %v; want EOF", n, err)
				}
				return nil
			case op == scOpText && mbIsTimePayload(p):
			case op == scOpBinary && werr == nil:
				if !bytes.Equal(p, payload) {
					return fmt.Errorf("echo of %d bytes: got %d different bytes", len(payload), len(p))
				}
				count.Add(1)
			default:
				return fmt.Errorf("unexpected frame op %#x %q", op, rawTrunc(p))
			}
			if op == scOpBinary {
				break
			}
		}
		if werr != nil {
			return fmt.Errorf("write failed (%v) but an echo came", werr)
		}
	}
}

// mbGorillaEchoUntilClose is mbEchoUntilClose for a gorilla client (which
// answers the Close itself).
func mbGorillaEchoUntilClose(c *gorilla.Conn, seed uint64, count *atomic.Int64) error {
	rng := rand.New(rand.NewPCG(seed, 11))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if typ, p, err := c.ReadMessage(); err != nil || typ != gorilla.TextMessage || !bytes.Equal(p, rawGreeting) {
		return fmt.Errorf("gorilla greeting: %d %q %v", typ, p, err)
	}
	giveUp := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(giveUp) {
			return fmt.Errorf("gorilla: no Close after %d echoes in 30s", count.Load())
		}
		payload := rawBytes(rng, 1+rng.IntN(1500))
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		werr := c.WriteMessage(gorilla.BinaryMessage, payload)
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			typ, p, err := c.ReadMessage()
			if err != nil {
				var ce *gorilla.CloseError
				if errors.As(err, &ce) {
					if ce.Code != gorilla.CloseGoingAway {
						return fmt.Errorf("gorilla: Close code %d; want 1001", ce.Code)
					}
					return nil
				}
				return fmt.Errorf("gorilla after %d echoes: %w (write: %v)", count.Load(), err, werr)
			}
			if typ == gorilla.TextMessage && mbIsTimePayload(p) {
				continue
			}
			if typ != gorilla.BinaryMessage || !bytes.Equal(p, payload) {
				return fmt.Errorf("gorilla: unexpected message %d of %d bytes", typ, len(p))
			}
			count.Add(1)
			break
		}
		if werr != nil {
			return fmt.Errorf("gorilla: write failed (%v) but an echo came", werr)
		}
	}
}

// TestMessage16MiB: a message of MaxMessage = 16 MiB echoes intact however
// it is framed and written; one byte more is refused from the header alone.
func TestMessage16MiB(t *testing.T) {
	const size = 16 << 20
	_, addr := startServer(t, Config{MaxMessage: size, PushInterval: time.Minute})
	rng := rand.New(rand.NewPCG(16, 20))
	msg := make([]byte, size)
	for i := 0; i < size; i += 8 {
		binary.LittleEndian.PutUint64(msg[i:], rng.Uint64())
	}
	sum := sha256.Sum256(msg)

	// run writes the wire bytes in a goroutine with write(stream) while the
	// test goroutine reads the echo.
	run := func(t *testing.T, write func(nc net.Conn) error) {
		rc := mbDial(t, addr, 4<<20, 4<<20, 1<<20)
		mbUpgrade(rc)
		start := time.Now()
		werr := make(chan error, 1)
		go func() {
			rc.nc.SetWriteDeadline(time.Now().Add(18 * time.Second))
			werr <- write(rc.nc)
		}()
		f, err := rc.rawRead(18 * time.Second)
		for err == nil && rawIsTimePush(f) {
			f, err = rc.rawRead(18 * time.Second)
		}
		if err != nil {
			t.Fatalf("reading the echo: %v", err)
		}
		took := time.Since(start)
		if err := <-werr; err != nil {
			t.Fatalf("writing: %v", err)
		}
		if f.op != rawOpBinary || !f.fin || f.masked || len(f.payload) != size {
			t.Fatalf("echo: %v; want one final unmasked binary frame of %d bytes", f, size)
		}
		if got := sha256.Sum256(f.payload); got != sum {
			i := 0
			for i < size && f.payload[i] == msg[i] {
				i++
			}
			t.Fatalf("echo differs from the message (sha256 %x; want %x), first at byte %d", got[:8], sum[:8], i)
		}
		t.Logf("16 MiB echoed intact in %v", took.Round(time.Millisecond))
		rc.echo(rawOpText, []byte("next"))
	}

	t.Run("OneFrame", func(t *testing.T) {
		frame := rawFrame(rawOpBinary, true, msg, true)
		run(t, func(nc net.Conn) error {
			_, err := nc.Write(frame)
			return err
		})
	})
	t.Run("Frames64", func(t *testing.T) {
		const chunk = 64
		stream := make([]byte, size/chunk*(chunk+6))
		w := 0
		for off := 0; off < size; off += chunk {
			b0 := rawOpCont
			if off == 0 {
				b0 = rawOpBinary
			}
			if off+chunk >= size {
				b0 |= 0x80
			}
			key := rng.Uint32() | 1
			stream[w], stream[w+1] = b0, 0x80|chunk
			binary.BigEndian.PutUint32(stream[w+2:], key)
			w += 6
			// Mask 4 bytes at a time: byte i is XORed with key byte i&3.
			for i := off; i < off+chunk; i += 4 {
				binary.BigEndian.PutUint32(stream[w:], binary.BigEndian.Uint32(msg[i:])^key)
				w += 4
			}
		}
		t.Logf("%d frames, %d bytes on the wire", size/chunk, len(stream))
		run(t, func(nc net.Conn) error {
			for b := stream; len(b) > 0; {
				n := min(len(b), 256<<10)
				if _, err := nc.Write(b[:n]); err != nil {
					return err
				}
				b = b[n:]
			}
			return nil
		})
	})
	t.Run("Trickled64", func(t *testing.T) {
		frame := rawFrame(rawOpBinary, true, msg, true)
		run(t, func(nc net.Conn) error {
			for b := frame; len(b) > 0; {
				n := min(len(b), 64)
				if _, err := nc.Write(b[:n]); err != nil {
					return err
				}
				b = b[n:]
			}
			return nil
		})
	})
	t.Run("TooBig", func(t *testing.T) {
		rc := rawDial(t, addr)
		mbUpgrade(rc)
		t0 := time.Now()
		rc.write(rawHeader(0x80|rawOpBinary, size+1, rawMaskKey()))
		rc.expectClose(1009)
		t.Logf("Close 1009 and EOF %v after the header alone", time.Since(t0).Round(time.Millisecond))
	})
}

// TestOriginCheck: with an Origins allow-list, a listed origin (in any
// case) and a request without Origin pass; another origin gets 403.
func TestOriginCheck(t *testing.T) {
	_, addr := startServer(t, Config{Origins: []string{"https://good.example"}, PushInterval: time.Minute})
	for _, tc := range []struct {
		origin string // "" means no Origin header
		status int
	}{
		{"https://good.example", 101},
		{"HTTPS://GOOD.EXAMPLE", 101},
		{"https://evil.example", 403},
		{"", 101},
	} {
		t.Run(fmt.Sprintf("Origin=%q", tc.origin), func(t *testing.T) {
			headers := []string{rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer}
			if tc.origin != "" {
				headers = append(headers, "Origin: "+tc.origin)
			}
			rc := rawDial(t, addr)
			rc.write([]byte(rawReq("GET /ws HTTP/1.1", headers...)))
			if tc.status == 101 {
				rc.expectUpgraded(rawKey)
				rc.expectGreeting()
				rc.echo(rawOpText, []byte("origin ok"))
				return
			}
			r, err := rc.readResponse(rawTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != tc.status {
				t.Fatalf("status line %q; want %d", r.line, tc.status)
			}
			if r.get("Sec-WebSocket-Accept") != "" {
				t.Errorf("refused handshake carries Sec-WebSocket-Accept")
			}
			n, err := rc.drainToEOF(rawTimeout)
			if err != io.EOF {
				t.Errorf("after the %d: %v; want EOF", tc.status, err)
			}
			t.Logf("%q: %s, then %d body bytes and EOF", tc.origin, r.line, n)
		})
	}
}
