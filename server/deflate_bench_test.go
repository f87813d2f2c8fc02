//go:build linux

package server

import (
	"bytes"
	stdflate "compress/flate"
	"io"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	kflate "github.com/klauspost/compress/flate"

	"github.com/wsmill/wsmill/poller"
)

// deflateOpen is r.open for a connection that negotiated deflate.
func (r *allocRig) deflateOpen(t testing.TB) (*conn, int) {
	c, peer := r.open(t)
	c.mu.Lock()
	c.deflate = true
	c.mu.Unlock()
	return c, peer
}

// readAvail reads what the socket holds now (after a turn that wrote).
func readAvail(t testing.TB, fd int, buf []byte) int {
	n, err := syscall.Read(fd, buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return n
}

// deflateSamples are the messages the compression figures are about: the
// demo's greeting and time push, and JSON of an application at sizes
// around the DeflateMin threshold and above.
func deflateSamples() []struct {
	name string
	msg  []byte
} {
	j := deflateJSON(16 << 10)
	return []struct {
		name string
		msg  []byte
	}{
		{"greeting-10B", []byte("Hi Client!")},
		{"time-19B", []byte(time.Now().Format(TimeLayout))},
		{"json-64B", j[:64]},
		{"json-128B", j[:128]},
		{"json-256B", j[:256]},
		{"json-1KiB", deflateJSON(1024)},
		{"json-16KiB", j},
	}
}

// BenchmarkDeflateCodec compresses one message per op with each candidate
// encoder, reset for every message as no context takeover requires, and
// reports the compressed size (wire-B, payload only). It is the
// measurement behind choosing klauspost/compress's stateless encoder and
// the DeflateMin default.
func BenchmarkDeflateCodec(b *testing.B) {
	for _, sm := range deflateSamples() {
		b.Run(sm.name+"/stdlib-BestSpeed", func(b *testing.B) {
			var out bytes.Buffer
			w, _ := stdflate.NewWriter(&out, stdflate.BestSpeed)
			b.SetBytes(int64(len(sm.msg)))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				w.Reset(&out)
				w.Write(sm.msg)
				w.Flush()
			}
			b.ReportMetric(float64(out.Len()-4), "wire-B")
		})
		b.Run(sm.name+"/klauspost-BestSpeed", func(b *testing.B) {
			var out bytes.Buffer
			w, _ := kflate.NewWriter(&out, kflate.BestSpeed)
			b.SetBytes(int64(len(sm.msg)))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				w.Reset(&out)
				w.Write(sm.msg)
				w.Flush()
			}
			b.ReportMetric(float64(out.Len()-4), "wire-B")
		})
		b.Run(sm.name+"/klauspost-stateless", func(b *testing.B) {
			d := getDeflater()
			defer putDeflater(d)
			var n int
			b.SetBytes(int64(len(sm.msg)))
			b.ReportAllocs()
			for b.Loop() {
				z, err := d.compress(sm.msg)
				if err != nil {
					b.Fatal(err)
				}
				n = len(z)
			}
			b.ReportMetric(float64(n), "wire-B")
		})
	}
}

// BenchmarkInflate decompresses one message per op: the standard
// library's reader against klauspost's (the one the workers use), each
// reset per message.
func BenchmarkInflate(b *testing.B) {
	for _, sm := range deflateSamples()[5:] {
		z := rawDeflate(b, sm.msg)
		out := make([]byte, len(sm.msg)+1)
		for _, lib := range []struct {
			name string
			r    io.ReadCloser
		}{{"stdlib", stdflate.NewReader(nil)}, {"klauspost", kflate.NewReader(nil)}} {
			b.Run(sm.name+"/"+lib.name, func(b *testing.B) {
				var src inflateSrc
				b.SetBytes(int64(len(sm.msg)))
				b.ReportAllocs()
				for b.Loop() {
					src = inflateSrc{p: z, tail: deflateTail}
					lib.r.(stdflate.Resetter).Reset(&src, nil)
					n, _ := io.ReadFull(lib.r, out)
					if n != len(sm.msg) {
						b.Fatalf("inflated %d bytes; want %d", n, len(sm.msg))
					}
				}
			})
		}
	}
}

// BenchmarkDeflateEcho is BenchmarkEcho for JSON, plain on a connection
// without deflate and compressed both ways on one with it: the peer writes
// a (compressed) masked frame, the worker inflates, the app echoes, the
// echo is compressed and written, the peer reads it. wire-B is the bytes
// of one frame each way on the wire (headers included).
func BenchmarkDeflateEcho(b *testing.B) {
	for _, sm := range deflateSamples()[5:] {
		for _, z := range []bool{false, true} {
			name := sm.name + "/plain"
			if z {
				name = sm.name + "/deflate"
			}
			b.Run(name, func(b *testing.B) {
				r := newAllocRig(b)
				var c *conn
				var peer int
				var frame []byte
				if z {
					c, peer = r.deflateOpen(b)
					frame = maskedFrame(ws.OpText, rawDeflate(b, sm.msg))
					frame[0] |= rsv1
				} else {
					c, peer = r.open(b)
					frame = maskedFrame(ws.OpText, sm.msg)
				}
				buf := make([]byte, 128<<10)
				mustWrite(b, peer, frame)
				if !r.turn(c, poller.EventRead) {
					b.Fatal("connection closed")
				}
				want := readAvail(b, peer, buf)
				b.SetBytes(int64(len(sm.msg)))
				b.ReportAllocs()
				for b.Loop() {
					mustWrite(b, peer, frame)
					if !r.turn(c, poller.EventRead) {
						b.Fatal("connection closed")
					}
					drain(b, peer, buf, want)
				}
				b.ReportMetric(float64(len(frame)), "in-wire-B")
				b.ReportMetric(float64(want), "out-wire-B")
			})
		}
	}
}

// cpuNow is the process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeflateBroadcast broadcasts a new 1 KiB JSON frame per op (as
// an application does: new content each time) to 19,000 connections,
// none of them or all of them with deflate: the compressed run includes
// compressing the frame once. Connections share 4,000 socket pairs, as in
// BenchmarkRevolution. cpu-ns/op is the process's CPU during the
// broadcasts only (getrusage), the figure the 1.1x budget is about.
func BenchmarkDeflateBroadcast(b *testing.B) {
	const conns, sockets = 19_000, 4_000
	msg := deflateJSON(1024)
	for _, z := range []bool{false, true} {
		name := "plain"
		if z {
			name = "deflate"
		}
		b.Run(name, func(b *testing.B) {
			workers := runtime.GOMAXPROCS(0)
			s, err := New(testConfig(Config{PushInterval: time.Hour, Workers: workers, SendBuffer: -1}))
			if err != nil {
				b.Fatal(err)
			}
			s.closeWorkers()
			fds := make([]int, sockets)
			peers := make([]int, sockets)
			for i := range sockets {
				p, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
				if err != nil {
					b.Fatal(err)
				}
				fds[i], peers[i] = p[0], p[1]
				syscall.SetsockoptInt(p[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1<<20)
				defer syscall.Close(p[0])
				defer syscall.Close(p[1])
			}
			for i := range conns {
				c := &conn{fd: fds[i%sockets], slot: -1, phase: phaseOpen, deflate: z}
				w := s.workers[i%workers]
				w.slots[(i/workers)%len(w.slots)].put(c)
			}
			s.open.Store(conns)
			buf := make([]byte, 256<<10)
			var cpu time.Duration
			var wire int
			b.ReportAllocs()
			for b.Loop() {
				f := NewFrame(OpText, msg)
				t0 := cpuNow()
				if got := s.Broadcast(f, Reliable).Sent(); got != conns {
					b.Fatalf("Broadcast reached %d; want %d", got, conns)
				}
				cpu += cpuNow() - t0
				b.StopTimer()
				wire = len(s.wire(&conn{deflate: z}, f))
				var wg sync.WaitGroup
				for k := range 2 {
					wg.Go(func() {
						for _, p := range peers[k*sockets/2 : (k+1)*sockets/2] {
							for {
								if n, err := syscall.Read(p, buf); n <= 0 || err != nil {
									break
								}
							}
						}
					})
				}
				wg.Wait()
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(wire), "wire-B/conn")
		})
	}
}

func TestDeflateSamplesCompress(t *testing.T) {
	// The figures above assume the JSON samples shrink and the demo's
	// short messages do not gain from compression.
	d := getDeflater()
	defer putDeflater(d)
	for _, sm := range deflateSamples() {
		z, err := d.compress(sm.msg)
		if err != nil {
			t.Fatal(err)
		}
		if got := rawInflate(t, z); !bytes.Equal(got, sm.msg) {
			t.Errorf("%s: round trip differs", sm.name)
		}
		t.Logf("%s: %d -> %d bytes", sm.name, len(sm.msg), len(z))
	}
}
