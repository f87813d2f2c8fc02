//go:build linux

package server

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/wsmill/wsmill/poller"
)

var benchSizes = []int{16, 125, 1 << 10, 4 << 10, 64 << 10}

// BenchmarkEcho measures one echo through the worker's turn on a socket
// pair: the peer writes a masked frame, the worker reads, unmasks, checks
// UTF-8 (text) and writes the echo, the peer reads it back.
func BenchmarkEcho(b *testing.B) {
	for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
		for _, size := range benchSizes {
			name := fmt.Sprintf("%s/%d", opName(op), size)
			b.Run(name, func(b *testing.B) {
				r := newAllocRig(b)
				c, peer := r.open(b)
				payload := make([]byte, size)
				for i := range payload {
					payload[i] = 'a' + byte(i%26)
				}
				frame := maskedFrame(op, payload)
				want := len(putHeader(new([ws.MaxHeaderSize]byte), op, size)) + size
				buf := make([]byte, want)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					mustWrite(b, peer, frame)
					if !r.turn(c, poller.EventRead) {
						b.Fatal("connection closed")
					}
					drain(b, peer, buf, want)
				}
			})
		}
	}
}

// echoBatch returns k masked binary frames of size bytes, every fourth
// followed by a ping, as one client write, and the bytes of their echoes
// and pongs.
func echoBatch(k, size int) (batch []byte, want int) {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	frame := maskedFrame(ws.OpBinary, payload)
	ping := maskedFrame(ws.OpPing, []byte("p"))
	for i := range k {
		batch = append(batch, frame...)
		want += len(putHeader(new([ws.MaxHeaderSize]byte), ws.OpBinary, size)) + size
		if i%4 == 3 {
			batch = append(batch, ping...)
			want += 3
		}
	}
	return batch, want
}

// BenchmarkEchoBatch measures a pipelining client: 16 frames (and 4
// pings) arrive in one read, the worker echoes them, the peer reads them
// back. ns/msg is per echoed frame; the worker's answers leave in one
// write(2) (gatherLocked) instead of one per frame.
func BenchmarkEchoBatch(b *testing.B) {
	for _, size := range []int{128, 1 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			const k = 16
			r := newAllocRig(b)
			c, peer := r.open(b)
			batch, want := echoBatch(k, size)
			buf := make([]byte, want)
			b.SetBytes(int64(k * size))
			b.ReportAllocs()
			for b.Loop() {
				mustWrite(b, peer, batch)
				if !r.turn(c, poller.EventRead) {
					b.Fatal("connection closed")
				}
				drain(b, peer, buf, want)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/k, "ns/msg")
		})
	}
}

// BenchmarkTimePush measures the wheel's push to one connection, including
// the peer reading it.
func BenchmarkTimePush(b *testing.B) {
	r := newAllocRig(b)
	c, peer := r.open(b)
	f := r.timeFrame()
	buf := make([]byte, f.Len())
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		r.s.wheel.push(c, f, LatestOnly)
		drain(b, peer, buf, len(buf))
	}
}

func opName(op ws.OpCode) string {
	if op == ws.OpText {
		return "text"
	}
	return "binary"
}

// The two reference benchmarks below move the same bytes through the same
// kind of socket pair, so the three differ only in what happens between
// read(2) and write(2).

// BenchmarkEchoGobwas is the plain gobwas/ws way: a net.Conn (the Go
// runtime's poller) with wsutil.ReadClientData and wsutil.WriteServerMessage.
func BenchmarkEchoGobwas(b *testing.B) {
	for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", opName(op), size), func(b *testing.B) {
				srv, peer := netConnPair(b)
				payload := make([]byte, size)
				for i := range payload {
					payload[i] = 'a' + byte(i%26)
				}
				frame := maskedFrame(op, payload)
				want := len(putHeader(new([ws.MaxHeaderSize]byte), op, size)) + size
				buf := make([]byte, want)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					mustWrite(b, peer, frame)
					data, gotOp, err := wsutil.ReadClientData(srv)
					if err != nil {
						b.Fatal(err)
					}
					if err := wsutil.WriteServerMessage(srv, gotOp, data); err != nil {
						b.Fatal(err)
					}
					drain(b, peer, buf, want)
				}
			})
		}
	}
}

// BenchmarkEchoLimit is the floor: read the masked bytes, unmask them with
// ws.Cipher, write them back; no framing, no checks.
func BenchmarkEchoLimit(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%d", size), func(b *testing.B) {
			r := newAllocRig(b)
			c, peer := r.open(b)
			payload := make([]byte, size)
			frame := maskedFrame(ws.OpBinary, payload)
			hl := len(frame) - size
			var mask [4]byte
			copy(mask[:], frame[hl-4:hl])
			in := make([]byte, len(frame))
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				mustWrite(b, peer, frame[hl:])
				drain(b, c.fd, in, size)
				ws.Cipher(in[:size], mask, 0)
				mustWrite(b, c.fd, in[:size])
				drain(b, peer, buf, size)
			}
		})
	}
}

// netConnPair returns the server side of a socket pair as a net.Conn (in the
// Go runtime's poller) and the peer as a raw descriptor.
func netConnPair(b *testing.B) (net.Conn, int) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "srv")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close(); syscall.Close(fds[1]) })
	return nc, fds[1]
}

// BenchmarkUpgrade measures one handshake through the worker: the peer
// writes the request, the worker reads it, runs the Upgrader and writes the
// 101 and the greeting, the peer reads them; then the connection closes.
// Each op includes socketpair(2) and close(2) for a fresh connection.
func BenchmarkUpgrade(b *testing.B) {
	r := newAllocRig(b)
	req := []byte("GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n" +
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n")
	want := 129 + len(greetingFrame)
	buf := make([]byte, want)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		c := r.s.table.acquire(fds[0])
		r.s.live.Add(1)
		c.phase = phaseHandshake
		mustWrite(b, fds[1], req)
		if !r.turn(c, poller.EventRead) || c.phase != phaseOpen {
			b.Fatal("upgrade failed")
		}
		drain(b, fds[1], buf, want)
		r.s.closeConn(c)
		syscall.Close(fds[1])
	}
}

// BenchmarkPushSlot measures the wheel's push to a slot of N connections:
// each has its own conn struct, lock, queue and descriptor. The descriptors
// are dups of one loopback TCP socket (a connection each would need 2N
// descriptors in this process, past the 20,000 limit at N = 10,000), so
// every push is a real write(2) to TCP, and the peer drains one socket
// between rounds (inside the timing: reading is cheap next to N writes).
func BenchmarkPushSlot(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			r := newAllocRig(b)
			fd, peer := tcpPair(b)
			frameLen := r.timeFrame().Len()
			// Room for a whole round in both kernel buffers: each small
			// segment is charged about 1 KiB (truesize), not 21 bytes.
			syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, n*2048+65536)
			peer.(*net.TCPConn).SetReadBuffer(n*2048 + 65536)
			slot := &wheelSlot{}
			for range n {
				d, err := syscall.Dup(fd)
				if err != nil {
					b.Fatal(err)
				}
				c := r.s.table.acquire(d)
				c.phase = phaseOpen
				slot.put(c)
				defer syscall.Close(d)
			}
			buf := make([]byte, n*frameLen)
			b.ReportAllocs()
			for b.Loop() {
				r.s.wheel.pushSlot(slot, 0)
				peer.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(peer, buf); err != nil {
					b.Fatalf("reading the pushes: %v (a push was queued: the buffers are too small)", err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/conn")
			for _, c := range slot.conns {
				if c.pending() != 0 {
					b.Fatalf("a push was queued (%d bytes): the socket buffer was too small", c.pending())
				}
			}
		})
	}
}

// tcpPair returns the server side of a loopback TCP connection as a raw
// non-blocking descriptor (a dup, owned by the caller's cleanup) and the
// client side as a net.Conn.
func tcpPair(b *testing.B) (int, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	rc, err := srv.(syscall.Conn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	fd := -1
	rc.Control(func(s uintptr) { fd, err = syscall.Dup(int(s)) })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { syscall.Close(fd); srv.Close(); client.Close() })
	return fd, client
}

// BenchmarkRevolution measures one revolution of the wheel over 100,000
// connections: every worker pushes all its slots, the workers in parallel,
// as they do when the wheel announces its ticks. Run it with -cpu 1,2: the
// server has GOMAXPROCS workers, so the time per revolution should fall
// with cores.
//
// Scale: 100,000 connections would need 200,000 descriptors as socket
// pairs, ten times this machine's per-process limit. So the 100,000 conn
// structs (each with its own lock, queue state and wheel slot) share 4,000
// AF_UNIX socket pairs, 25 connections to a socket, all on the socket's
// worker; every push is a real write(2). The peers are drained between
// revolutions, outside the timing.
func BenchmarkRevolution(b *testing.B) {
	const conns, sockets = 100_000, 4_000
	workers := runtime.GOMAXPROCS(0)
	s, err := New(testConfig(Config{PushInterval: time.Second, Workers: workers}))
	if err != nil {
		b.Fatal(err)
	}
	s.closeWorkers() // the revolution is driven by hand
	f := NewFrame(OpText, []byte(time.Now().Format(TimeLayout)))
	s.wheel.frames[0].Store(f)
	fds := make([]int, sockets)
	peers := make([]int, sockets)
	for i := range sockets {
		p, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		fds[i], peers[i] = p[0], p[1]
		defer syscall.Close(p[0])
		defer syscall.Close(p[1])
	}
	all := make([]*conn, conns)
	for i := range all {
		c := &conn{fd: fds[i%sockets], slot: -1, phase: phaseOpen}
		w := s.workers[i%workers] // sockets is a multiple of workers: a socket has one worker
		sl := &w.slots[(i/workers)%len(w.slots)]
		sl.put(c)
		all[i] = c
	}
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		for _, w := range s.workers {
			wg.Go(func() {
				for i := range w.slots {
					s.wheel.pushSlot(&w.slots[i], 0)
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		for _, p := range peers {
			for {
				if n, err := syscall.Read(p, buf); n <= 0 || err != nil {
					break
				}
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/conns, "ns/conn")
	for _, c := range all {
		if c.pending() != 0 {
			b.Fatalf("a push was queued (%d bytes): a socket buffer was too small", c.pending())
		}
	}
}

// BenchmarkBroadcastEmpty is a Broadcast that reaches nobody, at a 1 s and a
// 1 h push interval: the wheel has 100 or 65,536 slots per worker, and a
// broadcast must not pay for the empty ones.
func BenchmarkBroadcastEmpty(b *testing.B) {
	for _, iv := range []time.Duration{time.Second, time.Hour} {
		b.Run(iv.String(), func(b *testing.B) {
			s, err := New(testConfig(Config{PushInterval: iv, Workers: 2}))
			if err != nil {
				b.Fatal(err)
			}
			defer s.closeWorkers()
			f := NewFrame(OpText, []byte("nobody"))
			b.ReportAllocs()
			for b.Loop() {
				if r := s.Broadcast(f, Reliable); r != (FanoutResult{}) {
					b.Fatalf("Broadcast: got %+v; want nobody", r)
				}
			}
		})
	}
}
