//go:build linux && !race

package server

import (
	"syscall"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsmill/wsmill/poller"
)

// Allocation guards for permessage-deflate, in the style of alloc_test.go:
// a compressed echo (inflate, deliver, compress, write), a compressed push
// and a compressed broadcast of a prepared frame allocate nothing once the
// pools are warm.

func TestAllocsDeflateEcho(t *testing.T) {
	for _, tt := range []struct {
		name string
		op   ws.OpCode
		msg  []byte
	}{
		{"text/1KiB-json", ws.OpText, deflateJSON(1024)},
		{"binary/16KiB-json", ws.OpBinary, deflateJSON(16 << 10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newAllocRig(t)
			c, peer := r.deflateOpen(t)
			z := rawDeflate(t, tt.msg)
			frame := maskedFrame(tt.op, z)
			frame[0] |= rsv1
			buf := make([]byte, 64<<10)
			mustWrite(t, peer, frame)
			if !r.turn(c, poller.EventRead) {
				t.Fatal("connection closed")
			}
			want := readAvail(t, peer, buf)
			if buf[0] != 0x80|rsv1|byte(tt.op) {
				t.Fatalf("echo header % x; want RSV1 set", buf[:2])
			}
			allocs := testing.AllocsPerRun(200, func() {
				mustWrite(t, peer, frame)
				if !r.turn(c, poller.EventRead) {
					t.Fatal("connection closed")
				}
				drain(t, peer, buf, want)
			})
			if allocs != 0 {
				t.Errorf("got %v allocs per compressed echo; want 0", allocs)
			}
		})
	}
}

func TestAllocsDeflatePush(t *testing.T) {
	r := newAllocRig(t)
	c, peer := r.deflateOpen(t)
	f := NewFrame(OpText, deflateJSON(1024))
	n := len(f.deflated())
	if n >= f.Len() {
		t.Fatalf("compressed frame %d bytes; want fewer than %d", n, f.Len())
	}
	buf := make([]byte, n)
	allocs := testing.AllocsPerRun(200, func() {
		r.s.wheel.push(c, f, LatestOnly)
		drain(t, peer, buf, n)
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per compressed push; want 0", allocs)
	}
	if buf[0] != 0x80|rsv1|byte(OpText) {
		t.Errorf("push header % x; want RSV1 set", buf[:2])
	}
}

// TestAllocsDeflateBroadcast: half the connections negotiated deflate and
// get the compressed form, made once, the others the plain frame.
func TestAllocsDeflateBroadcast(t *testing.T) {
	r := newAllocRig(t)
	const n = 50
	var zpeers, ppeers []int
	for i := range n {
		if i%2 == 0 {
			_, p := r.deflateOpen(t)
			zpeers = append(zpeers, p)
		} else {
			_, p := r.open(t)
			ppeers = append(ppeers, p)
		}
	}
	f := NewFrame(OpText, deflateJSON(1024))
	zlen := len(f.deflated())
	buf := make([]byte, f.Len())
	allocs := testing.AllocsPerRun(100, func() {
		if got := r.s.Broadcast(f, Reliable).Sent(); got != n {
			t.Fatalf("Broadcast reached %d; want %d", got, n)
		}
		for _, p := range zpeers {
			drain(t, p, buf, zlen)
		}
		for _, p := range ppeers {
			drain(t, p, buf, f.Len())
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per broadcast; want 0", allocs)
	}
}

// TestAllocsDeflateSend: Conn.Send from a goroutine that is not a worker
// compresses with a pooled deflater.
func TestAllocsDeflateSend(t *testing.T) {
	r := newAllocRig(t)
	c, peer := r.deflateOpen(t)
	h := r.s.handle(c)
	msg := deflateJSON(1024)
	buf := make([]byte, 64<<10)
	h.Send(OpText, msg, Reliable)
	want := readAvail(t, peer, buf)
	done := make(chan float64)
	go func() {
		done <- testing.AllocsPerRun(200, func() {
			if res := h.Send(OpText, msg, Reliable); res != Written {
				t.Errorf("Send: got %v; want written", res)
			}
			drain(t, peer, buf, want)
		})
	}()
	if allocs := <-done; allocs != 0 {
		t.Errorf("got %v allocs per compressed send; want 0", allocs)
	}
}

// TestAllocsDeflateUpgrade: an upgrade that negotiates permessage-deflate
// allocates no more than one without it (gobwas/ws's writeAccept).
func TestAllocsDeflateUpgrade(t *testing.T) {
	r := newAllocRig(t)
	r.w.up.ExtensionCustom = r.w.extensions // as Config.Deflate sets it
	req := []byte("GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n" +
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate;server_no_context_takeover;client_no_context_takeover\r\n\r\n"
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
		if c.phase != phaseOpen || !c.deflate {
			t.Fatal("not upgraded with deflate")
		}
		r.s.closeConn(c)
		syscall.Close(peer)
	})
	const upstream = 1 // see TestAllocsUpgrade
	if allocs > upstream {
		t.Errorf("got %v allocs per deflate upgrade; want at most %d", allocs, upstream)
	}
	if got := string(buf[:len(resp)]); got != resp {
		t.Errorf("response = %q; want %q", got, resp)
	}
}

// TestAllocsDeflatePublish: a topic's deflate subscribers get the
// compressed form of a published frame (made once), the others the plain
// one, with no allocation per publish.
func TestAllocsDeflatePublish(t *testing.T) {
	r := newAllocRig(t)
	const n = 50
	var zpeers, ppeers []int
	for i := range n {
		var c *conn
		var p int
		if i%2 == 0 {
			c, p = r.deflateOpen(t)
			zpeers = append(zpeers, p)
		} else {
			c, p = r.open(t)
			ppeers = append(ppeers, p)
		}
		if !r.s.Subscribe(r.s.handle(c), "json") {
			t.Fatal("Subscribe failed")
		}
	}
	f := NewFrame(OpText, deflateJSON(1024))
	zlen := len(f.deflated())
	buf := make([]byte, f.Len())
	check := func() {
		if got := r.s.Publish("json", f, Reliable).Sent(); got != n {
			t.Fatalf("Publish reached %d; want %d", got, n)
		}
		for _, p := range zpeers {
			drain(t, p, buf, zlen)
			if buf[0] != 0x80|rsv1|byte(OpText) {
				t.Fatalf("deflate subscriber got header % x; want RSV1 set (the compressed form)", buf[:2])
			}
		}
		for _, p := range ppeers {
			drain(t, p, buf, f.Len())
			if buf[0] != 0x80|byte(OpText) {
				t.Fatalf("plain subscriber got header % x; want the plain frame", buf[:2])
			}
		}
	}
	check()
	if allocs := testing.AllocsPerRun(100, check); allocs != 0 {
		t.Errorf("got %v allocs per publish; want 0", allocs)
	}
}
