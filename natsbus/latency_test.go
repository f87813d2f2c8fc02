package natsbus

import (
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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
