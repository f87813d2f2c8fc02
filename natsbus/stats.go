package natsbus

// Reason is why a message did not cross the bus.
type Reason uint8

const (
	reasonDisconnected Reason = iota // published while NATS was unreachable
	reasonTooBig                     // published over MaxPayload (or NATS's max_payload)
	reasonInvalidTopic               // a topic that is no subject (ValidTopic)
	reasonClosed                     // published after Close
	reasonOversized                  // from the bus, over MaxPayload
	reasonMalformed                  // from the bus, not this format (header byte, UTF-8)
	reasonUnknownTopic               // from the bus, for a topic with no local subscriber
	reasonSlowConsumer               // from the bus, Backlog full
	numReasons
)

var reasonNames = [numReasons]string{"disconnected", "too_big", "invalid_topic", "closed",
	"oversized", "malformed", "unknown_topic", "slow_consumer"}

func (r Reason) String() string { return reasonNames[r] }

// Stats is a snapshot of the bridge's counters, for /metrics.
type Stats struct {
	Connected     bool
	Reconnects    uint64 // times the connection came back after a loss
	Published     uint64 // messages sent to NATS
	Received      uint64 // messages NATS delivered to the bridge (dropped ones included)
	Subscriptions int    // NATS subscriptions held: topics with local subscribers
	// Dropped by Reason: publishes that stayed local, and bus messages
	// not delivered.
	Dropped [numReasons]uint64
}

// Reasons lists every Reason, in the order of Stats.Dropped.
func Reasons() []Reason {
	r := make([]Reason, numReasons)
	for i := range r {
		r[i] = Reason(i)
	}
	return r
}

// Stats reads the counters. Safe from any goroutine.
func (b *Bridge) Stats() Stats {
	st := Stats{
		Connected:  b.nc.IsConnected(),
		Reconnects: b.reconnects.Load(),
		Published:  b.published.Load(),
		Received:   b.received.Load(),
	}
	for i := range st.Dropped {
		st.Dropped[i] = b.dropped[i].Load()
	}
	b.mu.Lock()
	st.Subscriptions = len(b.subs)
	slow := b.retired
	for _, s := range b.subs {
		n, _ := s.Dropped()
		slow += int64(n)
	}
	b.mu.Unlock()
	st.Dropped[reasonSlowConsumer] += uint64(slow)
	// Messages nats.go dropped never reached deliver: count them as
	// received too, so that received = delivered + dropped.
	st.Received += uint64(slow)
	return st
}
