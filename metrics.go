package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsmill/wsmill/server"
)

// statsCollector exports server.Stats at scrape time. The server only bumps
// its own atomic counters (no labels, no maps, no allocation on the frame
// path); all the formatting cost is paid here, once per scrape.
type statsCollector struct {
	srv func() *server.Server

	open, live, uptime, tickLag, tickLagMax                *prometheus.Desc
	accepted, upgrades, rejected, messages, bytes          *prometheus.Desc
	pings, pongs, closes, pushes, pushesSkipped, overflows *prometheus.Desc
	handoffs, idlePings, idleCloses, workerBusy            *prometheus.Desc
	pollEvents, workerTurns                                *prometheus.Desc

	// Hostile-input limits.
	buffered, bufferRefusals *prometheus.Desc
	httpConns                *prometheus.Desc

	// The application.
	appPanics *prometheus.Desc

	// Conn.Go's pool.
	offloaded, offRefused, offDropped, offPending *prometheus.Desc
	// permessage-deflate.
	deflateMsgs, deflateDeclined, inflateRefusals *prometheus.Desc

	// What the kernel holds: this server's sockets (sampled) and the
	// machine's TCP memory.
	resets, sockets, sockUnsent, sockUnread, sockMax *prometheus.Desc
	tcpPages, tcpLimit, tcpOrphans, tcpSockets       *prometheus.Desc
}

// socketSample is how many of the server's sockets a scrape reads (two
// ioctl(2) calls each, about a microsecond): every socket up to that many,
// an even sample beyond, so a scrape costs the same at a million
// connections as at four thousand.
const socketSample = 4096

func newStatsCollector(srv func() *server.Server) *statsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("wsmill_"+name, help, labels, nil)
	}
	return &statsCollector{
		srv:           srv,
		open:          d("open_connections", "Upgraded WebSocket connections now open."),
		live:          d("descriptors", "Connection descriptors held (handshaking, open, closing, plain HTTP)."),
		uptime:        d("uptime_seconds", "Seconds since the server started."),
		tickLag:       d("wheel_tick_lag_seconds", "How late the last timing-wheel tick ran."),
		tickLagMax:    d("wheel_tick_lag_max_seconds", "The worst timing-wheel tick lag since start."),
		accepted:      d("accepted_total", "TCP connections accepted."),
		upgrades:      d("upgrades_total", "Successful WebSocket upgrades."),
		rejected:      d("handshakes_rejected_total", "Handshakes or connections refused, by reason.", "reason"),
		messages:      d("messages_total", "Complete data messages, by direction (out includes the greeting).", "direction"),
		bytes:         d("message_bytes_total", "Payload bytes of data messages, by direction.", "direction"),
		pings:         d("pings_total", "Pings, by direction (out: idle-check pings).", "direction"),
		pongs:         d("pongs_total", "Pongs, by direction.", "direction"),
		closes:        d("closes_total", "Close frames by direction and code (3xxx, 4xxx, none and other are buckets).", "direction", "code"),
		pushes:        d("pushes_total", "Time frames written or queued."),
		pushesSkipped: d("pushes_skipped_total", "Time frames skipped because one was still queued or the queue was full."),
		overflows:     d("outbound_overflows_total", "Connections closed because their outbound queue passed -max-outbound."),
		handoffs:      d("http_handoffs_total", "Plain HTTP requests handed to net/http."),
		idlePings:     d("idle_pings_total", "Pings sent to connections silent for -idle-timeout."),
		idleCloses:    d("idle_closes_total", "Connections closed for staying silent after an idle ping."),
		workerBusy:    d("worker_busy_seconds_total", "Time the worker pool spent running connections (sum over workers)."),
		pollEvents:    d("poll_events_total", "Readiness events the poller dispatched to connections."),
		workerTurns:   d("worker_turns_total", "Times a worker ran a connection."),

		buffered:        d("buffered_bytes", "Bytes held for frames and messages that have not arrived whole, and the copies offloaded jobs (Conn.Go) hold (counted against -max-buffered)."),
		bufferRefusals:  d("buffer_refusals_total", "Connections closed with 1013 because their next chunk would pass -max-buffered."),
		appPanics:       d("app_panics_total", "Application callbacks (OnOpen, OnMessage, OnClose, OnUpgrade, a push's Frame) that panicked; the connection was closed with 1011 (500 for OnUpgrade)."),
		offloaded:       d("offload_jobs_total", "Jobs Conn.Go accepted for the offload pool."),
		offRefused:      d("offload_refused_total", "Conn.Go calls refused (Skipped): the connection had -offload-backlog jobs unfinished, or the copy would pass -max-buffered."),
		offDropped:      d("offload_dropped_total", "Accepted jobs that never ran: the shutdown drain ended first."),
		offPending:      d("offload_pending", "Jobs accepted and not finished (waiting or running)."),
		deflateMsgs:     d("deflate_messages_total", "Data messages compressed with permessage-deflate, by direction (also in messages_total).", "direction"),
		deflateDeclined: d("deflate_offers_declined_total", "permessage-deflate offers declined for unknown, invalid or repeated parameters (RFC 7692 7.1)."),
		inflateRefusals: d("inflate_failures_total", "Connections failed while inflating a message, by reason: too_big (past -max-message: 1009), invalid (not a DEFLATE stream: 1007).", "reason"),
		httpConns:       d("http_connections", "Plain HTTP connections handed to net/http and not yet closed (also in descriptors)."),

		resets:     d("resets_total", "Connections closed abortively (RST) because bytes for the client were still unsent when the server gave up on it (close timeout, overflow, idle timeout, end of shutdown)."),
		sockets:    d("socket_queue_sampled", "Connection sockets whose kernel queues this scrape read, of all held (label of).", "of"),
		sockUnsent: d("socket_unsent_bytes", "Bytes the kernel holds in this server's send queues (not sent or not acknowledged; SIOCOUTQ), estimated from the sample; each socket is capped near 2 x -sndbuf."),
		sockUnread: d("socket_unread_bytes", "Bytes the kernel holds in this server's receive queues, not read by a worker yet (SIOCINQ), estimated from the sample; each socket is capped near 2 x -rcvbuf."),
		sockMax:    d("socket_queue_max_bytes", "The largest send and receive queue in the sample.", "queue"),
		tcpPages:   d("kernel_tcp_memory_pages", "Memory held by every TCP socket on the machine, in pages (/proc/net/sockstat mem)."),
		tcpLimit:   d("kernel_tcp_memory_limit_pages", "net.ipv4.tcp_mem: pages at which the kernel squeezes TCP buffers (pressure) and refuses them (max; then every TCP socket stalls).", "level"),
		tcpOrphans: d("kernel_tcp_orphans", "TCP sockets on the machine closed by their process and still held by the kernel (/proc/net/sockstat orphan)."),
		tcpSockets: d("kernel_tcp_sockets", "TCP sockets on the machine, by state (/proc/net/sockstat).", "state"),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.srv()
	if s == nil {
		return
	}
	st := s.Stats()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	gauge(c.open, float64(st.Open))
	gauge(c.live, float64(st.Live))
	gauge(c.uptime, st.Uptime.Seconds())
	gauge(c.tickLag, st.TickLag.Seconds())
	gauge(c.tickLagMax, st.TickLagMax.Seconds())
	counter(c.accepted, float64(st.Accepted))
	counter(c.upgrades, float64(st.Upgraded))
	for r, n := range st.RejectedBy {
		counter(c.rejected, float64(n), server.RejectReason(r).String())
	}
	counter(c.messages, float64(st.MessagesIn), "in")
	counter(c.messages, float64(st.MessagesOut), "out")
	counter(c.bytes, float64(st.BytesIn), "in")
	counter(c.bytes, float64(st.BytesOut), "out")
	counter(c.pings, float64(st.PingsIn), "in")
	counter(c.pings, float64(st.IdlePings), "out")
	counter(c.pongs, float64(st.PongsIn), "in")
	counter(c.pongs, float64(st.PongsOut), "out")
	for i := range st.ClosesReceived {
		label := server.CloseCodeLabel(i)
		if n := st.ClosesReceived[i]; n > 0 {
			counter(c.closes, float64(n), "in", label)
		}
		if n := st.ClosesSent[i]; n > 0 {
			counter(c.closes, float64(n), "out", label)
		}
	}
	counter(c.pushes, float64(st.Pushes))
	counter(c.pushesSkipped, float64(st.PushesSkipped))
	counter(c.overflows, float64(st.Overflows))
	counter(c.handoffs, float64(st.HTTPHandoffs))
	counter(c.idlePings, float64(st.IdlePings))
	counter(c.idleCloses, float64(st.IdleCloses))
	counter(c.workerBusy, st.WorkerBusy.Seconds())
	counter(c.pollEvents, float64(st.PollEvents))
	counter(c.workerTurns, float64(st.WorkerTurns))

	gauge(c.buffered, float64(st.Buffered))
	counter(c.bufferRefusals, float64(st.BufferRefusals))
	gauge(c.httpConns, float64(st.HTTPConns))
	counter(c.appPanics, float64(st.AppPanics))
	counter(c.offloaded, float64(st.Offloaded))
	counter(c.offRefused, float64(st.OffloadRefused))
	counter(c.offDropped, float64(st.OffloadDropped))
	gauge(c.offPending, float64(st.OffloadPending))
	counter(c.deflateMsgs, float64(st.DeflateIn), "in")
	counter(c.deflateMsgs, float64(st.DeflateOut), "out")
	counter(c.deflateDeclined, float64(st.DeflateDeclined))
	counter(c.inflateRefusals, float64(st.InflateTooBig), "too_big")
	counter(c.inflateRefusals, float64(st.InflateInvalid), "invalid")

	counter(c.resets, float64(st.Resets))
	ss := s.SampleSockets(socketSample)
	unsent, unread := ss.Estimate()
	gauge(c.sockets, float64(ss.Sampled), "sampled")
	gauge(c.sockets, float64(ss.Sockets), "held")
	gauge(c.sockUnsent, float64(unsent))
	gauge(c.sockUnread, float64(unread))
	gauge(c.sockMax, float64(ss.MaxUnsent), "send")
	gauge(c.sockMax, float64(ss.MaxUnread), "receive")
	if m, err := server.ReadTCPMemory(); err == nil {
		gauge(c.tcpPages, float64(m.Pages))
		gauge(c.tcpLimit, float64(m.Min), "min")
		gauge(c.tcpLimit, float64(m.Pressure), "pressure")
		gauge(c.tcpLimit, float64(m.Max), "max")
		gauge(c.tcpOrphans, float64(m.Orphans))
		gauge(c.tcpSockets, float64(m.InUse), "inuse")
		gauge(c.tcpSockets, float64(m.TimeWait), "timewait")
	}
}

// metricsHandler serves the registry: wsmill's counters plus the Go
// runtime's and the process's.
func metricsHandler(srv func() *server.Server, extra ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(extra...)
	reg.MustRegister(newStatsCollector(srv),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
