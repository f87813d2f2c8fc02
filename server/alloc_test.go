//go:build linux && !race

package server

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsmill/wsmill/poller"
)

// The allocation guards drive the same functions the workers and the wheel
// run, on a real socket pair, with no goroutine in between: the worker's
// turn (run), the wheel's push and the handshake. Each must allocate
// nothing once pools are warm.

func TestAllocsEchoFrame(t *testing.T) {
	for _, tt := range []struct {
		name string
		op   ws.OpCode
		size int
	}{
		{"text/16", ws.OpText, 16},
		{"binary/125", ws.OpBinary, 125},
		{"binary/4096", ws.OpBinary, 4096},
		{"ping/16", ws.OpPing, 16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newAllocRig(t)
			c, peer := r.open(t)
			payload := make([]byte, tt.size)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			frame := maskedFrame(tt.op, payload)
			want := len(putHeader(new([ws.MaxHeaderSize]byte), tt.op, tt.size)) + tt.size
			if tt.op == ws.OpPing {
				want = 2 + tt.size
			}
			buf := make([]byte, want)
			allocs := testing.AllocsPerRun(200, func() {
				mustWrite(t, peer, frame)
				if !r.turn(c, poller.EventRead) {
					t.Fatal("connection closed")
				}
				drain(t, peer, buf, want)
			})
			if allocs != 0 {
				t.Errorf("got %v allocs per echo; want 0", allocs)
			}
			if string(buf[len(buf)-tt.size:]) != string(payload) {
				t.Errorf("echo payload mismatch")
			}
		})
	}
}

// TestAllocsEchoBatch: 16 frames in one read, their echoes gathered into
// one write (gatherLocked, uncork), with pings among them.
func TestAllocsEchoBatch(t *testing.T) {
	for _, size := range []int{128, 1024} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r := newAllocRig(t)
			c, peer := r.open(t)
			batch, want := echoBatch(16, size)
			buf := make([]byte, want)
			allocs := testing.AllocsPerRun(200, func() {
				mustWrite(t, peer, batch)
				if !r.turn(c, poller.EventRead) {
					t.Fatal("connection closed")
				}
				drain(t, peer, buf, want)
			})
			if allocs != 0 {
				t.Errorf("got %v allocs per batch; want 0", allocs)
			}
		})
	}
}

func TestAllocsTimePush(t *testing.T) {
	r := newAllocRig(t)
	c, peer := r.open(t)
	f := r.timeFrame()
	buf := make([]byte, f.Len())
	allocs := testing.AllocsPerRun(200, func() {
		r.s.wheel.push(c, f, LatestOnly)
		drain(t, peer, buf, len(buf))
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per push; want 0", allocs)
	}
	if buf[0] != 0x81 || int(buf[1]) != len(TimeLayout) {
		t.Errorf("push header = % x; want 81 %02x", buf[:2], len(TimeLayout))
	}
}

func TestAllocsUpgrade(t *testing.T) {
	r := newAllocRig(t)
	req := []byte("GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n" +
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n")
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	want := len(resp) + len(greetingFrame)
	buf := make([]byte, want)
	allocs := testing.AllocsPerRun(200, func() {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		c, peer := r.s.table.acquire(fds[0]), fds[1]
		r.s.live.Add(1)
		c.phase = phaseHandshake
		mustWrite(t, peer, req)
		if !r.turn(c, poller.EventRead) {
			t.Fatal("upgrade failed")
		}
		drain(t, peer, buf, want)
		if c.phase != phaseOpen {
			t.Fatal("not upgraded")
		}
		r.s.closeConn(c)
		syscall.Close(peer)
	})
	// One allocation is gobwas/ws's own: writeAccept makes the 28-byte
	// Sec-WebSocket-Accept value with make() and it escapes through
	// bufio.Writer.WriteString (ws v1.5.0, nonce.go). Everything of ours
	// on the upgrade path allocates nothing; a second allocation fails.
	const upstream = 1
	if allocs > upstream {
		t.Errorf("got %v allocs per upgrade; want at most %d (gobwas/ws writeAccept)", allocs, upstream)
	}
	if got := string(buf[:len(resp)]); got != resp {
		t.Errorf("response = %q; want %q", got, resp)
	}
}

// TestAllocsForeignSend: a send through a Conn handle from a goroutine
// that is not a worker, which the kernel takes whole, allocates nothing.
func TestAllocsForeignSend(t *testing.T) {
	r := newAllocRig(t)
	c, peer := r.open(t)
	h := r.s.handle(c)
	payload := []byte("a price: 101.25")
	buf := make([]byte, 2+len(payload))
	done := make(chan float64)
	go func() {
		done <- testing.AllocsPerRun(200, func() {
			if res := h.Send(OpText, payload, Reliable); res != Written {
				t.Errorf("Send: got %v; want written", res)
			}
			drain(t, peer, buf, len(buf))
		})
	}()
	if allocs := <-done; allocs != 0 {
		t.Errorf("got %v allocs per send; want 0", allocs)
	}
}

// TestAllocsBroadcast: a broadcast of a prepared frame allocates nothing,
// whatever the number of connections.
func TestAllocsBroadcast(t *testing.T) {
	r := newAllocRig(t)
	const n = 50
	var peers []int
	for range n {
		_, peer := r.open(t)
		peers = append(peers, peer)
	}
	f := NewFrame(OpBinary, []byte("tick"))
	buf := make([]byte, f.Len())
	allocs := testing.AllocsPerRun(100, func() {
		if got := r.s.Broadcast(f, LatestOnly); got != (FanoutResult{Written: n}) {
			t.Fatalf("Broadcast: got %+v; want %d written", got, n)
		}
		for _, p := range peers {
			drain(t, p, buf, len(buf))
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per broadcast to %d connections; want 0", allocs, n)
	}
}
