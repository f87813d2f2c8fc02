package server

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// drainApp's producer sends numbered 1 KiB messages to the first client,
// pausing whenever the queue is over half of MaxOutbound until OnDrain
// says it has emptied.
type drainApp struct {
	total, half int
	drain       chan struct{}
	drains      atomic.Int32
	pauses      atomic.Int32
	waiting     atomic.Bool  // the producer is paused (sends nothing)
	notEmpty    atomic.Int32 // OnDrain calls that found bytes still queued while the producer waited
	done        chan error
}

func (a *drainApp) OnOpen(c Conn) { go a.produce(c) }

func (a *drainApp) produce(c Conn) {
	msg := make([]byte, 1024)
	for i := range a.total {
		copy(msg, fmt.Sprintf("%08d", i))
		if r := c.Send(OpBinary, msg, Reliable); !r.Sent() {
			a.done <- fmt.Errorf("send %d: %v", i, r)
			return
		}
		if c.Pending() > a.half {
			a.pauses.Add(1)
			a.waiting.Store(true)
			for c.Pending() > a.half {
				select {
				case <-a.drain:
				case <-time.After(10 * time.Second):
					a.done <- fmt.Errorf("no OnDrain after pause %d (pending %d)", a.pauses.Load(), c.Pending())
					return
				}
			}
			a.waiting.Store(false)
		}
	}
	a.done <- nil
}

func (a *drainApp) OnDrain(c Conn) {
	a.drains.Add(1)
	// Paused since before this call: everything it sent was queued before
	// the server checked the queue empty, so it must still be.
	if a.waiting.Load() && c.Pending() != 0 {
		a.notEmpty.Add(1)
	}
	select {
	case a.drain <- struct{}{}:
	default:
	}
}

func (a *drainApp) OnMessage(Conn, Opcode, []byte) {}
func (a *drainApp) OnClose(Conn, CloseCode)        {}

// TestDrain: a gorilla client that stops reading twice (300 ms each) and
// resumes; the producer pauses on Pending and resumes on OnDrain, so the
// client gets every message in order and is never closed for overflow.
func TestDrain(t *testing.T) {
	const maxOut = 64 << 10
	app := &drainApp{total: 3000, half: maxOut / 2, drain: make(chan struct{}, 1), done: make(chan error, 1)}
	s, addr := startServer(t, Config{App: app, MaxOutbound: maxOut, SendBuffer: 4096})
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		nc, err := net.Dial(network, addr)
		if err == nil {
			nc.(*net.TCPConn).SetReadBuffer(64 << 10) // the kernel holds little for us (not below the loopback MSS: the window would stall)
		}
		return nc, err
	}}
	c, _, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range app.total {
		if i == 10 || i == 1500 {
			time.Sleep(300 * time.Millisecond) // stop reading
		}
		_, m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := fmt.Sprintf("%08d", i); string(m[:8]) != want {
			t.Fatalf("message %d is %q; want %q", i, m[:8], want)
		}
	}
	if err := <-app.done; err != nil {
		t.Fatal(err)
	}
	p, n := app.pauses.Load(), app.drains.Load()
	t.Logf("%d pauses, %d OnDrain calls", p, n)
	if p < 2 {
		t.Errorf("producer paused %d times; want at least 2 (the client stopped reading twice)", p)
	}
	if n < p {
		t.Errorf("%d OnDrain calls for %d pauses; want one for each at least", n, p)
	}
	if k := app.notEmpty.Load(); k != 0 {
		t.Errorf("%d OnDrain calls found the queue not empty while the producer waited", k)
	}
	if o := s.Stats().Overflows; o != 0 {
		t.Errorf("overflows %d; want 0", o)
	}
}
