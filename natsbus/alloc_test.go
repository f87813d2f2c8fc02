//go:build !race

package natsbus

import (
	"testing"
	"time"
)

// TestDeliverAllocs: a message from the bus costs its one Frame (the
// payload's one copy: two allocations) whatever the number of local
// subscribers; Server.Publish adds none per subscriber.
func TestDeliverAllocs(t *testing.T) {
	ns := startNATS(t, 0)
	a := startInstance(t, natsURL(natsPort(ns)), Config{})
	one := join(t, a, "one")
	many := join(t, a, "many")
	for range 99 {
		join(t, a, "many")
	}
	_, _ = one, many
	msg := append([]byte{1}, "hello, room"...)
	measure := func(topic string) float64 {
		subject := "wsmill." + topic
		return testing.AllocsPerRun(200, func() { a.bridge.deliver(subject, msg) })
	}
	// The clients do not read: 400 messages of 16 bytes fit their queues.
	time.Sleep(10 * time.Millisecond)
	n1, n100 := measure("one"), measure("many")
	if n1 > 2 || n100 != n1 {
		t.Errorf("allocations per delivered message: %v to 1 subscriber, %v to 100; want at most 2, the same for both", n1, n100)
	}
}
