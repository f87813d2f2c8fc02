//go:build linux

package server

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// BenchmarkPollerEcho measures one echo through the whole event path: a
// TCP client writes a masked frame, epoll reports the socket to its
// worker's poll goroutine (easygo's callback, the worker's onEvent and the
// table lookup), the worker echoes, the client reads the echo back. Unlike
// BenchmarkEcho, which runs the worker's turn by hand, this is what a
// change to the poller or to onEvent shows up in.
func BenchmarkPollerEcho(b *testing.B) {
	for _, size := range []int{128, 1 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			_, addr := startServer(b, Config{App: echoApp{}, PushInterval: time.Hour, Workers: 1})
			rc := rawHandshake(b, addr)
			payload := make([]byte, size)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			frame := maskedFrame(ws.OpBinary, payload)
			want := len(putHeader(new([ws.MaxHeaderSize]byte), ws.OpBinary, size)) + size
			buf := make([]byte, want)
			rc.nc.SetDeadline(time.Now().Add(time.Minute))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rc.nc.Write(frame); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(rc.br, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWheelAddRemove measures what an open and a close cost the
// wheel: a connection put in its worker's next slot and taken out again.
func BenchmarkWheelAddRemove(b *testing.B) {
	r := newAllocRig(b)
	c, _ := r.open(b) // in its slot; closed when the benchmark ends
	b.ReportAllocs()
	for b.Loop() {
		r.s.wheel.remove(c)
		r.s.wheel.add(c)
	}
}
