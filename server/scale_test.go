package server

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Scale tests driven by raw sockets: no client library, no goroutine per
// connection. A few workers dial and then drive their share of the
// connections one after another.

const (
	scOpText   = 0x1
	scOpBinary = 0x2
	scOpClose  = 0x8
	scOpPing   = 0x9
	scOpPong   = 0xA
)

// scConn is one raw client connection.
type scConn struct {
	c      net.Conn
	br     *bufio.Reader
	pushes int // time pushes seen
}

// scDial connects to addr, performs the upgrade of GET /ws and checks the
// 101 response (including Sec-WebSocket-Accept). The returned reader may
// already hold frames that followed the response.
func scDial(addr string, timeout time.Duration) (*scConn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*scConn, error) {
		c.Close()
		return nil, err
	}
	var key [16]byte
	rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET /ws HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + k + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, req); err != nil {
		return fail(fmt.Errorf("writing upgrade request: %w", err))
	}
	br := bufio.NewReaderSize(c, 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(fmt.Errorf("reading upgrade response: %w", err))
	}
	resp.Body.Close() // 101 has no body; this does not touch br
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fail(fmt.Errorf("upgrade answered %s", resp.Status))
	}
	h := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(h[:]); got != want {
		return fail(fmt.Errorf("Sec-WebSocket-Accept = %q; want %q", got, want))
	}
	c.SetDeadline(time.Time{})
	return &scConn{c: c, br: br}, nil
}

// scReadFrame reads one (unmasked) server frame, with a read deadline.
func scReadFrame(sc *scConn, timeout time.Duration) (fin bool, op byte, payload []byte, err error) {
	sc.c.SetReadDeadline(time.Now().Add(timeout))
	var hdr [8]byte
	if _, err = io.ReadFull(sc.br, hdr[:2]); err != nil {
		return
	}
	fin = hdr[0]&0x80 != 0
	if hdr[0]&0x70 != 0 {
		err = fmt.Errorf("server frame has RSV bits set: %#x", hdr[0])
		return
	}
	op = hdr[0] & 0x0f
	if hdr[1]&0x80 != 0 {
		err = errors.New("server frame is masked")
		return
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err = io.ReadFull(sc.br, hdr[:2]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(hdr[:2]))
	case 127:
		if _, err = io.ReadFull(sc.br, hdr[:8]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(hdr[:8])
	}
	if n > 4<<20 {
		err = fmt.Errorf("server frame of %d bytes", n)
		return
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(sc.br, payload)
	return
}

// scFrame builds one masked client frame.
func scFrame(fin bool, op byte, payload []byte) []byte {
	b := make([]byte, 0, 14+len(payload))
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b = append(b, b0)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	rand.Read(key[:])
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// scWriteFrame writes one masked client frame, with a write deadline.
func scWriteFrame(sc *scConn, fin bool, op byte, payload []byte, timeout time.Duration) error {
	sc.c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := sc.c.Write(scFrame(fin, op, payload))
	return err
}

// scReadMessage reads the next complete data message, skipping time pushes
// (counted in sc.pushes) and answering nothing. Control frames other than
// Close are returned as an error; Close is returned as op scOpClose.
func scReadMessage(sc *scConn, timeout time.Duration) (op byte, payload []byte, err error) {
	deadline := time.Now().Add(timeout)
	var msg []byte
	var msgOp byte
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, nil, errors.New("timed out waiting for a message")
		}
		fin, fop, p, err := scReadFrame(sc, left)
		if err != nil {
			return 0, nil, err
		}
		switch fop {
		case scOpClose:
			return scOpClose, p, nil
		case scOpPing, scOpPong:
			return 0, nil, fmt.Errorf("unexpected control frame %#x", fop)
		case 0: // continuation
			if msgOp == 0 {
				return 0, nil, errors.New("continuation without a first frame")
			}
			msg = append(msg, p...)
		default:
			if msgOp != 0 {
				return 0, nil, errors.New("new message inside a fragmented one")
			}
			msgOp, msg = fop, p
		}
		if !fin {
			continue
		}
		if msgOp == scOpText && libTimePush.Match(msg) {
			sc.pushes++
			msgOp, msg = 0, nil
			continue
		}
		return msgOp, msg, nil
	}
}

// scGreeting reads the greeting, which must be the first frame.
func scGreeting(sc *scConn, timeout time.Duration) error {
	fin, op, p, err := scReadFrame(sc, timeout)
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if !fin || op != scOpText || string(p) != "Hi Client!" {
		return fmt.Errorf("first frame fin=%v op=%#x %q; want the greeting", fin, op, p)
	}
	return nil
}

// scParallel runs f(i) for i in [0,n) on workers goroutines, each taking a
// contiguous share, and returns the first error.
func scParallel(n, workers int, f func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, workers)
	per := (n + workers - 1) / workers
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, n)
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				if err := f(i); err != nil {
					errs[w] = fmt.Errorf("conn %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// scCountFDs counts this process's open descriptors.
func scCountFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) // includes the directory's own descriptor, every time
}

func TestManyClients(t *testing.T) {
	const (
		clients  = 2000
		dialers  = 8
		interval = time.Second
		rd       = 10 * time.Second // read deadline for one read
	)
	start := time.Now()
	runtime.GC()
	baseline := runtime.NumGoroutine()
	s, addr := startServer(t, Config{PushInterval: interval})
	workers := s.Config().Workers

	conns := make([]*scConn, clients)
	t.Cleanup(func() {
		for _, sc := range conns {
			if sc != nil {
				sc.c.Close()
			}
		}
	})

	// Connect all, concurrently from the dialers.
	err := scParallel(clients, dialers, func(i int) error {
		sc, err := scDial(addr, rd)
		if err != nil {
			return err
		}
		conns[i] = sc
		return scGreeting(sc, rd)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clients upgraded and greeted in %v", clients, time.Since(start).Round(time.Millisecond))
	if st := s.Stats(); st.Open != clients {
		t.Fatalf("Stats().Open = %d; want %d", st.Open, clients)
	}

	// All connected and idle: the server must not hold a goroutine per
	// connection. The dialers have returned; give them a moment to exit.
	limit := baseline + workers + 10
	var g int
	for end := time.Now().Add(2 * time.Second); ; {
		g = runtime.NumGoroutine()
		if g <= limit || time.Now().After(end) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("goroutines with %d idle connections: %d (baseline before the server %d, workers %d, limit %d)",
		clients, g, baseline, workers, limit)
	if g > limit {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines with %d connections; want at most %d\n%s", g, clients, limit, buf)
	}

	// Every client: one masked text message, its echo back.
	err = scParallel(clients, dialers, func(i int) error {
		sc := conns[i]
		msg := fmt.Appendf(nil, "echo from client %d", i)
		if err := scWriteFrame(sc, true, scOpText, msg, rd); err != nil {
			return err
		}
		op, p, err := scReadMessage(sc, rd)
		if err != nil {
			return fmt.Errorf("reading echo: %w", err)
		}
		if op != scOpText || !bytes.Equal(p, msg) {
			return fmt.Errorf("echo is op %#x %q; want text %q", op, p, msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("echoes done at %v", time.Since(start).Round(time.Millisecond))

	// Every client: at least one time push (it may have come during the
	// echo already).
	err = scParallel(clients, dialers, func(i int) error {
		sc := conns[i]
		for sc.pushes == 0 {
			fin, op, p, err := scReadFrame(sc, 3*interval)
			if err != nil {
				return fmt.Errorf("waiting for a time push: %w", err)
			}
			if !fin || op != scOpText || !libTimePush.Match(p) {
				return fmt.Errorf("frame fin=%v op=%#x %q while waiting for a time push", fin, op, p)
			}
			sc.pushes++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pushes seen by all at %v", time.Since(start).Round(time.Millisecond))

	// Close all cleanly: Close 1000, wait for the server's Close, drop.
	err = scParallel(clients, dialers, func(i int) error {
		sc := conns[i]
		if err := scWriteFrame(sc, true, scOpClose, []byte{0x03, 0xe8}, rd); err != nil {
			return err
		}
		op, p, err := scReadMessage(sc, rd)
		if err != nil {
			return fmt.Errorf("waiting for the close answer: %w", err)
		}
		if op != scOpClose || len(p) < 2 || binary.BigEndian.Uint16(p) != 1000 {
			return fmt.Errorf("close answer is op %#x %x; want Close 1000", op, p)
		}
		sc.c.Close()
		conns[i] = nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Stats().Open == 0", func() bool { return s.Stats().Open == 0 })
	waitFor(t, 10*time.Second, "Stats().Live == 0", func() bool { return s.Stats().Live == 0 })
	t.Logf("all closed at %v; stats %+v", time.Since(start).Round(time.Millisecond), s.Stats())
}

func TestAbruptCloseNoFDLeak(t *testing.T) {
	const (
		clients = 1000
		dialers = 8
		rd      = 10 * time.Second
	)
	s, addr := startServer(t, Config{PushInterval: time.Second})

	// One complete connection first, so everything the server opens lazily
	// (the acceptor's spare descriptor, ...) exists before the baseline.
	probe, err := scDial(addr, rd)
	if err != nil {
		t.Fatal(err)
	}
	if err := scGreeting(probe, rd); err != nil {
		t.Fatal(err)
	}
	probe.c.Close()
	waitFor(t, 5*time.Second, "probe released", func() bool { return s.Stats().Live == 0 })

	before := scCountFDs(t)

	conns := make([]*scConn, clients)
	t.Cleanup(func() {
		for _, sc := range conns {
			if sc != nil {
				sc.c.Close()
			}
		}
	})
	err = scParallel(clients, dialers, func(i int) error {
		sc, err := scDial(addr, rd)
		if err != nil {
			return err
		}
		conns[i] = sc
		return scGreeting(sc, rd)
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Open != clients || st.Live != clients {
		t.Fatalf("after upgrades: Open=%d Live=%d; want %d", st.Open, st.Live, clients)
	}
	during := scCountFDs(t)
	perConn := float64(during-before) / clients
	t.Logf("fds: before %d, with %d connections %d: %.3f per connection (client + server side)",
		before, clients, during, perConn)
	if perConn != 2.0 {
		t.Errorf("%.3f descriptors per connection; want exactly 2.0 (1 client + 1 server)", perConn)
	}

	// Four groups of 250: RST, RST mid-frame, FIN, FIN mid-frame.
	err = scParallel(clients, dialers, func(i int) error {
		sc := conns[i]
		group := i * 4 / clients
		if group == 1 || group == 3 {
			// The first 3 bytes of a masked 126-length text frame header.
			sc.c.SetWriteDeadline(time.Now().Add(rd))
			if _, err := sc.c.Write([]byte{0x81, 0x80 | 126, 0x01}); err != nil {
				return err
			}
		}
		if group < 2 {
			if err := sc.c.(*net.TCPConn).SetLinger(0); err != nil {
				return err
			}
		}
		err := sc.c.Close()
		conns[i] = nil
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Stats().Live == 0 after abrupt closes", func() bool {
		return s.Stats().Live == 0
	})
	if st := s.Stats(); st.Open != 0 {
		t.Fatalf("Stats().Open = %d; want 0", st.Open)
	}
	var after int
	waitFor(t, 5*time.Second, "descriptor count back to the baseline", func() bool {
		after = scCountFDs(t)
		return after == before
	})
	t.Logf("fds after closing all: %d (before %d)", after, before)
}

// TestAbruptCloseBeforeHandshake resets connections right after connect,
// before any request byte: the server must drop each in the handshake phase
// and leak nothing. (Under -race this also exercises register racing with
// the worker that closes the connection.)
func TestAbruptCloseBeforeHandshake(t *testing.T) {
	const (
		clients = 4000
		dialers = 8
	)
	s, addr := startServer(t, Config{PushInterval: time.Second})
	probe, err := scDial(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := scGreeting(probe, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	probe.c.Close()
	waitFor(t, 5*time.Second, "probe released", func() bool { return s.Stats().Live == 0 })
	before := scCountFDs(t)

	err = scParallel(clients, dialers, func(i int) error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		if i%2 == 0 {
			c.(*net.TCPConn).SetLinger(0)
		}
		return c.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "all connections accepted", func() bool {
		return s.Stats().Accepted >= clients+1
	})
	waitFor(t, 10*time.Second, "Stats().Live == 0", func() bool { return s.Stats().Live == 0 })
	var after int
	waitFor(t, 5*time.Second, "descriptor count back to the baseline", func() bool {
		after = scCountFDs(t)
		return after == before
	})
	if st := s.Stats(); st.Open != 0 || st.Upgraded != 1 {
		t.Fatalf("stats %+v; want Open 0, Upgraded 1", st)
	}
}
