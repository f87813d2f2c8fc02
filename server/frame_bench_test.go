//go:build linux

package server

import (
	"fmt"
	"testing"

	"github.com/gobwas/ws"

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
