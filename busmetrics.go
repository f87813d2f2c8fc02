package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsmill/wsmill/natsbus"
)

// busCollector exports the chat's counters and, with -nats, the bridge's.
// bus returns nil without -nats: then the bus series are absent, not
// zero, so that a dashboard can tell "no bus" from "bus down".
type busCollector struct {
	chat *chat
	bus  func() *natsbus.Bridge

	chatMessages, chatRefused                                      *prometheus.Desc
	connected, reconnects, published, received, dropped, subscribe *prometheus.Desc
}

func newBusCollector(ch *chat, bus func() *natsbus.Bridge) *busCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("wsmill_"+name, help, labels, nil)
	}
	return &busCollector{
		chat:         ch,
		bus:          bus,
		chatMessages: d("chat_messages_total", "Messages published to a /chat room."),
		chatRefused:  d("chat_refused_total", "/chat messages refused, closing the client: too_long (over -chat-max, 1009), binary (1003).", "reason"),
		connected:    d("bus_connected", "1 while connected to NATS, 0 while not (-nats set)."),
		reconnects:   d("bus_reconnects_total", "Times the NATS connection came back after a loss."),
		published:    d("bus_published_total", "Messages sent to NATS."),
		received:     d("bus_received_total", "Messages NATS delivered to this instance (dropped ones included)."),
		dropped:      d("bus_dropped_total", "Messages that did not cross the bus, by reason: publishes delivered on this instance only (disconnected, too_big, invalid_topic, closed) and bus messages not delivered (oversized, malformed, unknown_topic, slow_consumer).", "reason"),
		subscribe:    d("bus_subscriptions", "NATS subscriptions held: topics with subscribers on this instance."),
	}
}

func (c *busCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.chatMessages, c.chatRefused, c.connected, c.reconnects, c.published, c.received, c.dropped, c.subscribe} {
		ch <- d
	}
}

func (c *busCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.chatMessages, c.chat.messages.Load())
	counter(c.chatRefused, c.chat.tooLong.Load(), "too_long")
	counter(c.chatRefused, c.chat.nonText.Load(), "binary")
	b := c.bus()
	if b == nil {
		return
	}
	st := b.Stats()
	up := 0.0
	if st.Connected {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, up)
	counter(c.reconnects, st.Reconnects)
	counter(c.published, st.Published)
	counter(c.received, st.Received)
	for _, r := range natsbus.Reasons() {
		counter(c.dropped, st.Dropped[r], r.String())
	}
	ch <- prometheus.MustNewConstMetric(c.subscribe, prometheus.GaugeValue, float64(st.Subscriptions))
}
