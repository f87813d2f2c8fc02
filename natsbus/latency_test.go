package natsbus

import (
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmill/wsmill/server"
)

// BenchmarkDelivery: one message at a time from a client on A, timed to
// its arrival at a client on the same instance (same) and on the other
// (cross, through NATS): p50 and p99 per message.
func BenchmarkDelivery(b *testing.B) {
	ns := startNATS(b, 0)
	url := natsURL(natsPort(ns))
	a, bb := startInstance(b, url, Config{}), startInstance(b, url, Config{})
	pub := join(b, a, "bench")
	same := join(b, a, "bench")
	cross := join(b, bb, "bench")
	waitNATSSubs(b, ns, 2)
	for _, tc := range []struct {
		name string
		recv *websocket.Conn
	}{{"same", same}, {"cross", cross}} {
		b.Run(tc.name, func(b *testing.B) {
			var lat []time.Duration
			msg := []byte("0123456789abcdef0123456789abcdef")
			for b.Loop() {
				t0 := time.Now()
				pub.WriteMessage(websocket.TextMessage, msg)
				tc.recv.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, _, err := tc.recv.ReadMessage(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				// Drain the other two copies so that no queue grows.
				for _, c := range []*websocket.Conn{pub, same, cross} {
					if c != tc.recv {
						c.ReadMessage()
					}
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkThroughput: messages of 128 bytes published on A through
// Bridge.Publish as fast as the caller goes, each received by one client on
// A and one on B; an op is one message arriving at both.
func BenchmarkThroughput(b *testing.B) {
	ns := startNATS(b, 0)
	url := natsURL(natsPort(ns))
	roomy := func(c *server.Config) { c.MaxOutbound = 8 << 20 }
	a, bb := startInstance(b, url, Config{Backlog: 1 << 16}, roomy), startInstance(b, url, Config{Backlog: 1 << 16}, roomy)
	onA, onB := join(b, a, "tp"), join(b, bb, "tp")
	waitNATSSubs(b, ns, 2)
	msg := make([]byte, 128)
	done := make(chan error, 2)
	b.ResetTimer()
	for _, c := range []*websocket.Conn{onA, onB} {
		go func() {
			for range b.N {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, _, err := c.ReadMessage(); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < b.N; i++ {
		if _, err := a.bridge.Publish("tp", server.OpBinary, msg, server.Reliable); err != nil {
			b.Fatal(err)
		}
		if i%256 == 255 {
			time.Sleep(50 * time.Microsecond) // let the readers run on 2 cores
		}
	}
	for range 2 {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if d := bb.bridge.Stats().Dropped; d != [numReasons]uint64{} {
		b.Fatalf("dropped %v", d)
	}
}
