//go:build linux

package server

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

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

// BenchmarkTimePush measures the wheel's push to one connection, including
// the peer reading it.
func BenchmarkTimePush(b *testing.B) {
	r := newAllocRig(b)
	c, peer := r.open(b)
	buf := make([]byte, len(r.s.wheel.frame))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		r.s.wheel.push(c)
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
