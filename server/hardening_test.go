//go:build linux

package server

// Regression tests for defects a review found (hostile clients and races
// that could take the server down). Each test failed on the code before its
// fix; the comment on each says how.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsmill/wsmill/poller"
)

// watchCounts samples s.live and s.open until stop is closed and records
// the lowest values seen: neither may ever go negative.
func watchCounts(s *Server) (stop func() (minLive, minOpen int64)) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var lo, oo atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if v := s.live.Load(); v < lo.Load() {
				lo.Store(v)
			}
			if v := s.open.Load(); v < oo.Load() {
				oo.Store(v)
			}
			select {
			case <-done:
				return
			default:
				runtime.Gosched()
			}
		}
	}()
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return lo.Load(), oo.Load()
	}
}

// staleEvent delivers an event for fd from outside its worker's event
// loop, as an event taken from epoll for an earlier connection on the
// number would arrive: recorded in the conn, which is scheduled on its
// worker.
func staleEvent(s *Server, fd int, ev poller.Event) {
	c := s.table.get(fd)
	if c == nil {
		return
	}
	c.ev.Or(uint32(ev))
	s.notify(c)
}

// TestStaleEventDuringRegister: an event taken for the previous connection
// on a descriptor number can be dispatched while register is still setting
// up the new connection on that number. Here a goroutine dispatches events
// for every low descriptor number while clients churn. Before the fix the
// race detector reported worker.read racing register, and with the window
// widened handshakes were parsed as frames and live went negative.
func TestStaleEventDuringRegister(t *testing.T) {
	s, addr := startServer(t, Config{PushInterval: time.Minute, CloseTimeout: 200 * time.Millisecond})
	stopCounts := watchCounts(s)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for fd := 3; fd < 256; fd++ {
				// The listener's number has no conn: staleEvent skips it.
				staleEvent(s, fd, poller.EventRead|poller.EventWrite)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	err := scParallel(300, 8, func(i int) error {
		sc, err := scDial(addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer sc.c.Close()
		if err := scGreeting(sc, 3*time.Second); err != nil {
			return err
		}
		msg := []byte{byte(i), byte(i >> 8), 'x'}
		if err := scWriteFrame(sc, true, rawOpBinary, msg, 3*time.Second); err != nil {
			return err
		}
		for {
			op, p, err := scReadMessage(sc, 3*time.Second)
			if err != nil {
				return err
			}
			if op == rawOpBinary {
				if !bytes.Equal(p, msg) {
					return errors.New("echo mismatch")
				}
				return nil
			}
		}
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("client: got %v; want every client greeted and echoed", err)
	}
	rawWaitLive(t, s, 0, 5*time.Second)
	if minLive, minOpen := stopCounts(); minLive < 0 || minOpen < 0 {
		t.Fatalf("lowest live %d, open %d; want never negative", minLive, minOpen)
	}
}

// TestRegisterNotScheduledBeforeSetup: the deterministic form of the race
// above. A hook runs inside register after the table handed out the struct
// and before the descriptor joins the poller; it dispatches an event for
// the number, as a stale event from the previous connection would. The
// connection must not run before it is set up: before the fix a worker ran
// it with phase still free, read the handshake as frames, closed the
// descriptor, and register closed it a second time.
func TestRegisterNotScheduledBeforeSetup(t *testing.T) {
	s, err := New(testConfig(rawConfig()))
	if err != nil {
		t.Fatal(err)
	}
	var hooked atomic.Int32
	s.testHookRegister = func(c *conn) {
		hooked.Add(1)
		staleEvent(s, c.fd, poller.EventRead|poller.EventWrite)
		time.Sleep(20 * time.Millisecond) // let a worker take it, if it can
	}
	addr := serveOn(t, s)
	for i := range 5 {
		nc, err := net.DialTimeout("tcp", addr, rawTimeout)
		if err != nil {
			t.Fatal(err)
		}
		// The request is in the socket before the server accepts it.
		nc.Write([]byte(rawUpgradeRequest()))
		rc := &rawConn{t: t, nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
		rc.expectUpgraded(rawKey)
		rc.expectGreeting()
		rc.echo(rawOpText, []byte("after a stale event"))
		nc.Close()
		rawWaitLive(t, s, 0, 3*time.Second)
		if got := s.live.Load(); got != 0 {
			t.Fatalf("client %d: live = %d; want 0", i, got)
		}
	}
	if hooked.Load() == 0 {
		t.Fatal("the register hook never ran")
	}
}

// addFailPoller makes the kernel refuse the next Add on demand: it puts a
// regular file on the descriptor number for the call (epoll_ctl answers
// EPERM, through easygo's real bookkeeping), then puts the socket back.
type addFailPoller struct {
	poller.Poller
	file   int
	fails  atomic.Int32
	shared *atomic.Int32 // when set, the count to use instead of fails
}

func (p *addFailPoller) Add(fd int) error {
	fails := &p.fails
	if p.shared != nil {
		fails = p.shared
	}
	if fails.Add(-1) < 0 {
		fails.Add(1)
		return p.Poller.Add(fd)
	}
	sock, err := syscall.Dup(fd)
	if err != nil {
		return err
	}
	defer syscall.Close(sock)
	if err := syscall.Dup3(p.file, fd, syscall.O_CLOEXEC); err != nil {
		return err
	}
	err = p.Poller.Add(fd)
	if err2 := syscall.Dup3(sock, fd, syscall.O_CLOEXEC); err2 != nil {
		panic(err2)
	}
	if err == nil {
		return errors.New("addFailPoller: Add of a regular file succeeded")
	}
	return err
}

// TestPollAddFailureKeepsAccepting: one failed poll.Add (ENOSPC from
// fs.epoll.max_user_watches, ENOMEM, EBADF in real life; EPERM here) must
// not block its descriptor number. Before the fix easygo kept the callback
// of the failed Add, every later Add on that number answered "already
// registered", and since the kernel hands out the lowest free number, the
// server stopped accepting.
func TestPollAddFailureKeepsAccepting(t *testing.T) {
	s, err := New(testConfig(rawConfig()))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "regular"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Every worker's poller fails on demand (the accepted descriptor may
	// belong to any of them); fails is shared.
	fp := &addFailPoller{file: int(f.Fd())}
	for _, w := range s.workers {
		w.poll = &addFailPoller{Poller: w.poll, file: fp.file, shared: &fp.fails}
	}
	addr := serveOn(t, s)
	rawHandshake(t, addr).nc.Close() // the listener is in the poller
	rawWaitLive(t, s, 0, 3*time.Second)
	fp.fails.Store(1)

	// The first connection's Add fails: it is closed.
	nc, err := net.DialTimeout("tcp", addr, rawTimeout)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(rawTimeout))
	if n, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatalf("first connection: read %d bytes; want it closed", n)
	}
	nc.Close()
	if fp.fails.Load() != 0 {
		t.Fatal("the injected failure did not happen")
	}
	// Every later connection is served, on whatever number it gets.
	for i := range 20 {
		rc := rawHandshake(t, addr)
		rc.echo(rawOpBinary, []byte{byte(i)})
		rc.nc.Close()
	}
	rawWaitLive(t, s, 0, 3*time.Second)
}

// TestHangupAfterReadBudget: a client sends a burst of frames larger than
// one turn's read budget and then shuts down its side, without reading the
// echoes (they wait in the server's queue, so no EventWrite edge comes to
// the rescue). The FIN must be seen: before the fix the turn that ran out
// of budget forgot the hang-up, the next turn took a short read for
// "drained", and no new edge came (most trials still open seconds later).
func TestHangupAfterReadBudget(t *testing.T) {
	s, addr := startServer(t, Config{PushInterval: time.Minute, MaxOutbound: 64 << 20})
	frame := rawFrame(rawOpBinary, true, bytes.Repeat([]byte{'h'}, 16<<10), true)
	burst := bytes.Repeat(frame, (4<<20)/len(frame))
	for trial := range 10 {
		rc := rawHandshake(t, addr)
		sc := mbServerConn(s, rc.nc)
		if sc == nil {
			t.Fatalf("trial %d: the server's conn was not found", trial)
		}
		fd := sc.fd
		tc := rc.nc.(*net.TCPConn)
		tc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := tc.Write(burst); err != nil {
			t.Fatalf("trial %d: write: %v", trial, err)
		}
		tc.CloseWrite()
		// The second counts from when the server has read every byte (on a
		// loaded machine reading 4 MiB can take a while): then only the
		// FIN is left, and it must be seen.
		for wait := time.Now().Add(10 * time.Second); mbClientOutq(rc.nc) != 0 || mbInq(fd) > 0; {
			if time.Now().After(wait) || s.live.Load() == 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		deadline := time.Now().Add(time.Second)
		for s.live.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("trial %d: the server still held the connection 1 s after the client's FIN", trial)
			}
			time.Sleep(5 * time.Millisecond)
		}
		rc.nc.Close()
	}
}

// TestHugeMaxConnsStartsSmall: memory at startup must not depend on the
// connection cap. Before the fix -max-conns 50,000,000 (or an open-file
// limit of 2^30 from a container runtime) sized the table, the ready queue
// and the wheel's slots for the cap: 1.2 GB before the first client.
func TestHugeMaxConnsStartsSmall(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, addr := startServer(t, Config{MaxConns: 50_000_000, PushInterval: 100 * time.Millisecond})
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Fatalf("New+Serve with MaxConns 50,000,000 allocated %d MiB; want under 16 MiB", got>>20)
	}
	if s.Config().MaxConns != 50_000_000 {
		t.Fatalf("MaxConns = %d; want 50000000", s.Config().MaxConns)
	}
	rc := rawHandshake(t, addr)
	rc.echo(rawOpText, []byte("served"))
	if f, err := rc.rawRead(rawTimeout); err != nil || !rawIsTimePush(f) {
		t.Fatalf("got %v (err %v); want a time push", f, err)
	}
}

// TestIdlePingSkippedIsNotBroken: a due idle ping that finds the conn's
// Close frame already queued is skipped (nothing may follow a Close); that
// is not a broken socket. Before the fix the wheel flagged evBroken and the
// worker hard-closed, losing the queued Close frame.
func TestIdlePingSkippedIsNotBroken(t *testing.T) {
	r := newAllocRig(t)
	r.s.cfg.IdleTimeout = time.Second
	c, _ := r.open(t)
	c.seen.Store(0)
	c.mu.Lock()
	c.closeSent = true // the window between startClose and wheel.remove
	c.mu.Unlock()
	r.s.wheel.checkIdle(c, 5000)
	if ev := c.ev.Load(); ev&evBroken != 0 {
		t.Fatalf("conn events %#x after a skipped ping; want no evBroken", ev)
	}
}

// TestLimitClamp: with -max-message and -max-outbound at their largest, a
// queue (MaxOutbound counted bytes plus one whole frame and its header)
// must still fit the buffer classes and the int32 queue offset. Before the
// fix both clamped to 1 GiB: 2^31+14 bytes, past the last size class
// (getBuf panicked) and past outHead's range.
func TestLimitClamp(t *testing.T) {
	for _, tt := range []struct {
		name          string
		msg, outbound int
	}{
		{"both at 1 GiB", 1 << 30, 1 << 30},
		{"both huge", 1 << 40, 1 << 40},
		{"outbound huge", 1 << 20, 1 << 40},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{MaxMessage: tt.msg, MaxOutbound: tt.outbound}.withDefaults()
			worst := cfg.MaxMessage + cfg.MaxOutbound + ws.MaxHeaderSize
			if worst > 1<<31-1 {
				t.Fatalf("MaxMessage %d + MaxOutbound %d + header = %d; want at most %d", cfg.MaxMessage, cfg.MaxOutbound, worst, 1<<31-1)
			}
			if c := classOf(worst); c > maxClassShift {
				t.Fatalf("classOf(%d) = %d; want at most %d", worst, c, maxClassShift)
			}
		})
	}
}

// TestAcceptRetriesAfterError: after a failed accept (ENOBUFS, ENOMEM, or
// EMFILE with no spare descriptor left) the accept loop backs off and must
// then accept what waits in the backlog by itself. The listener is
// edge-triggered: before the fix the loop waited for the next edge, so the
// connections already queued waited until another client came.
func TestAcceptRetriesAfterError(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOBUFS, syscall.ENOMEM} {
		t.Run(errno.Error(), func(t *testing.T) {
			s, err := New(testConfig(rawConfig()))
			if err != nil {
				t.Fatal(err)
			}
			var armed, failed atomic.Int32
			s.accept4 = func(lfd int, sa *syscall.RawSockaddrAny) (int, syscall.Errno) {
				if armed.Load() == 1 && failed.CompareAndSwap(0, 1) {
					return -1, errno
				}
				return accept4(lfd, sa)
			}
			addr := serveOn(t, s)
			// Once a first client is served the loop waits for an edge.
			rawHandshake(t, addr).nc.Close()
			armed.Store(1)
			rc := rawDial(t, addr)
			rc.write([]byte(rawUpgradeRequest()))
			rc.expectUpgraded(rawKey) // within rawTimeout, with no other client
			rc.expectGreeting()
			if failed.Load() != 1 {
				t.Fatal("the injected accept failure did not happen")
			}
		})
	}
}

// TestDeclaredLengthIsNotAllocated: memory held for an incomplete frame
// grows with the bytes that arrived, not with the length the header
// declares. Before the fix each of these 100 connections, which sent 15
// bytes (a header declaring 1 MiB and one payload byte), made the server
// allocate 1 MiB: 100 MiB for 1.5 KB of traffic.
func TestDeclaredLengthIsNotAllocated(t *testing.T) {
	const conns = 100
	s, addr := startServer(t, Config{PushInterval: time.Minute, MaxMessage: 1 << 20})
	hdr := rawHeader(0x80|rawOpBinary, 1<<20, rawMaskKey())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		rc := rawDial(t, addr)
		// Request, header and one byte in one write: the server reads them
		// in the turn that answers the upgrade.
		rc.write(append(append([]byte(rawUpgradeRequest()), hdr...), 'x'))
		rc.expectUpgraded(rawKey)
		rc.expectGreeting()
	}
	time.Sleep(50 * time.Millisecond)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Fatalf("%d connections that declared 1 MiB and sent 1 byte made the process allocate %d MiB; want under 16 MiB", conns, got>>20)
	}
	if got := s.Stats().Open; got != conns {
		t.Fatalf("open = %d; want %d (the frames are incomplete, not wrong)", got, conns)
	}
	if got := s.Stats().Buffered; got > conns*512 {
		t.Fatalf("%d bytes held for %d one-byte payloads; want at most %d", got, conns, conns*512)
	}
}

// TestHeldBufferGrowsWithBytes: a frame trickled in grows its held buffer
// with the bytes received (at most twice as much, or the 512-byte minimum),
// and the budget is back to zero when it completes.
func TestHeldBufferGrowsWithBytes(t *testing.T) {
	s, addr := startServer(t, Config{PushInterval: time.Minute, MaxMessage: 1 << 20})
	rc := rawHandshake(t, addr)
	payload := bytes.Repeat([]byte("held"), (1<<20)/4)
	frame := rawFrame(rawOpBinary, true, payload, true)
	sent := 0
	for _, upto := range []int{100, 1000, 5000, 20000, 70000, 300000} {
		rc.write(frame[sent:upto])
		sent = upto
		got := 0
		waitFor(t, 2*time.Second, "the server to hold the bytes", func() bool {
			got = int(s.Stats().Buffered)
			return got >= sent-14
		})
		if lim := max(2*sent, 512); got > lim {
			t.Fatalf("after %d bytes: %d bytes held; want at most %d", sent, got, lim)
		}
	}
	rc.write(frame[sent:])
	rc.expectFrame(rawOpBinary, payload)
	// The echo leaves from inside OnMessage, before the worker gives the
	// buffer back: the client can see it first.
	waitFor(t, 2*time.Second, "the budget back at 0 after the echo", func() bool { return s.Stats().Buffered == 0 })
}

// TestBufferBudget: past Config.MaxBuffered (over all connections) the
// connection whose chunk would pass it is closed with 1013 and counted;
// the others carry on, and the budget is back to zero when they finish.
func TestBufferBudget(t *testing.T) {
	const kib = 1 << 10
	s, addr := startServer(t, Config{PushInterval: time.Minute, MaxMessage: 64 * kib, MaxBuffered: 128 * kib})
	if got := s.Config().MaxBuffered; got != 128*kib {
		t.Fatalf("MaxBuffered = %d; want %d", got, 128*kib)
	}
	frag := func(op byte, fin bool, n int, b byte) []byte {
		return rawFrame(op, fin, bytes.Repeat([]byte{b}, n), true)
	}
	held := func(want int64) {
		t.Helper()
		waitFor(t, 2*time.Second, "held bytes", func() bool { return s.Stats().Buffered == want })
	}
	a := rawHandshake(t, addr)
	a.write(frag(rawOpBinary, false, 16*kib, 'a'))
	a.write(frag(rawOpCont, false, 16*kib, 'a'))
	a.write(frag(rawOpCont, false, 16*kib, 'a'))
	held(64 * kib) // 48 KiB in a 64 KiB buffer
	b := rawHandshake(t, addr)
	b.write(frag(rawOpBinary, false, 16*kib, 'b'))
	b.write(frag(rawOpCont, false, 16*kib, 'b'))
	held(96 * kib)
	// 40 KiB more would need a 64 KiB buffer: 160 KiB in all.
	c := rawHandshake(t, addr)
	c.write(frag(rawOpBinary, false, 40*kib, 'c'))
	c.expectClose(1013)
	if got := s.Stats().BufferRefusals; got != 1 {
		t.Fatalf("BufferRefusals = %d; want 1", got)
	}
	held(96 * kib)
	// b grows to 64 KiB: exactly the budget.
	b.write(frag(rawOpCont, true, 1*kib, 'b'))
	b.expectFrame(rawOpBinary, bytes.Repeat([]byte{'b'}, 33*kib))
	a.write(frag(rawOpCont, true, 1*kib, 'a'))
	a.expectFrame(rawOpBinary, bytes.Repeat([]byte{'a'}, 49*kib))
	held(0)
	if got := s.Stats().ClosesSent[13]; got != 1 {
		t.Fatalf("closes sent with 1013 = %d; want 1", got)
	}
}

// stallApp is recApp, except that the message "stall" holds the worker
// until release is closed: a worker that is behind.
type stallApp struct {
	*recApp
	stalled chan struct{}
	release chan struct{}
}

func (a *stallApp) OnMessage(c Conn, op Opcode, p []byte) {
	if string(p) == "stall" {
		close(a.stalled)
		<-a.release
		return
	}
	a.recApp.OnMessage(c, op, p)
}

// TestShutdownBehindStillSaysGoingAway: when Shutdown's context ends before
// a worker got to its connections (an overloaded box: 284,000 of 903,000
// clients of a scale run saw a bare EOF), each open connection still gets
// Close 1001 before its FIN, and OnClose reports 1001, as for those the
// drain reached.
func TestShutdownBehindStillSaysGoingAway(t *testing.T) {
	app := &stallApp{recApp: newRecApp(), stalled: make(chan struct{}), release: make(chan struct{})}
	cfg := rawConfig()
	cfg.App, cfg.Workers = app, 1
	s, addr := startServer(t, cfg)
	const n = 40
	var clients []*rawConn
	for range n {
		clients = append(clients, rawHandshake(t, addr))
	}
	clients[0].write(rawFrame(rawOpText, true, []byte("stall"), true))
	select {
	case <-app.stalled:
	case <-time.After(3 * time.Second):
		t.Fatal("the worker never got the stalling message")
	}
	go func() {
		time.Sleep(200 * time.Millisecond) // Shutdown is waiting for the worker by then
		close(app.release)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: got %v; want context.Canceled", err)
	}
	for _, rc := range clients {
		rc.expectClose(uint16(CloseGoingAway))
	}
	for range n {
		if code := app.waitClose(t); code != CloseGoingAway {
			t.Fatalf("OnClose: got %d; want 1001", code)
		}
	}
}
