//go:build linux

package server

import (
	"crypto/rand"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsmill/wsmill/poller"
)

// The allocation guards and the frame benchmarks drive the same functions
// the workers and the wheel run, on a real socket pair, with no goroutine in
// between: the worker's turn (run), the wheel's push and the handshake.

// allocRig is a server that was never started (no wheel goroutine) with
// one worker whose event loop is stopped at once, driven by hand.
type allocRig struct {
	s *Server
	w *worker
}

func newAllocRig(t testing.TB) *allocRig { return newAllocRigN(t, 1) }

// newAllocRigN is newAllocRig with the given number of workers.
func newAllocRigN(t testing.TB, workers int) *allocRig {
	s, err := New(testConfig(Config{PushInterval: time.Hour, Workers: workers}))
	if err != nil {
		t.Fatal(err)
	}
	s.closeWorkers()
	// On an AF_UNIX pair SIOCOUTQ counts what the peer has not read yet;
	// those bytes sit in the peer's queue and no close orphans them.
	s.unsent = func(int) int { return 0 }
	return &allocRig{s: s, w: s.workers[0]}
}

// pair returns a connected non-blocking socket pair: the server's side is
// registered in the table (not the poller: events are delivered by hand).
func (r *allocRig) pair(t testing.TB) (*conn, int) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := r.s.table.acquire(fds[0])
	r.s.live.Add(1)
	c.phase = phaseHandshake
	c.sched.Store(schedIdle) // set up, as register leaves it
	t.Cleanup(func() { syscall.Close(fds[1]) })
	return c, fds[1]
}

// turn runs one worker turn for c as if the poller reported ev.
func (r *allocRig) turn(c *conn, ev poller.Event) bool {
	c.ev.Or(uint32(ev))
	c.sched.Store(schedRunning)
	ok := r.w.run(c)
	c.sched.Store(schedIdle)
	return ok
}

func (r *allocRig) open(t testing.TB) (*conn, int) {
	c, peer := r.pair(t)
	c.phase = phaseOpen
	r.s.open.Add(1)
	r.s.wheel.add(c)
	t.Cleanup(func() { r.s.closeConn(c) })
	return c, peer
}

func maskedFrame(op ws.OpCode, payload []byte) []byte {
	f := ws.NewFrame(op, true, payload)
	f.Header.Masked = true
	rand.Read(f.Header.Mask[:])
	f.Payload = append([]byte(nil), payload...)
	ws.Cipher(f.Payload, f.Header.Mask, 0)
	b, err := ws.CompileFrame(f)
	if err != nil {
		panic(err)
	}
	return b
}

func mustWrite(t testing.TB, fd int, p []byte) {
	for len(p) > 0 {
		n, err := syscall.Write(fd, p)
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		p = p[n:]
	}
}

// drain reads exactly n bytes that must already be in the socket.
func drain(t testing.TB, fd int, buf []byte, n int) {
	for got := 0; got < n; {
		m, err := syscall.Read(fd, buf[got:n])
		if err != nil || m == 0 {
			t.Fatalf("read %d of %d bytes: %v", got, n, err)
		}
		got += m
	}
}

// timeFrame builds the wheel's frames for now, as a tick does, and returns
// the time push's.
func (r *allocRig) timeFrame() *Frame {
	r.s.wheel.buildFrames(time.Now())
	return r.s.wheel.frames[0].Load()
}
