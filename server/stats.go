package server

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// Counters. Every update is one atomic add on a fixed field or array slot:
// no map, no label lookup, no allocation, so the frame path stays at zero
// allocations. Exporters (main's /metrics) read them through Stats.

// RejectReason says why a handshake or connection was refused.
type RejectReason uint8

const (
	RejectBadRequest     RejectReason = iota // 400: malformed request, bad Upgrade/Connection/Host/key
	RejectMethod                             // 405: not GET
	RejectVersion                            // 505 (HTTP version) or 426 (WebSocket version)
	RejectURITooLong                         // 414
	RejectHeaderTooLarge                     // 431
	RejectOrigin                             // 403
	RejectConnLimit                          // 503: MaxConns reached
	RejectTimeout                            // handshake not complete in HandshakeTimeout
	RejectFDLimit                            // out of descriptors: accepted and closed at once

	RejectHTTPLimit // 503: a plain HTTP request past MaxHTTPConns
	RejectApp       // Config.OnUpgrade refused (its status)
	numRejectReasons
)

var rejectNames = [numRejectReasons]string{
	"bad_request", "method", "version", "uri_too_long", "header_too_large",
	"origin", "conn_limit", "handshake_timeout", "fd_limit",

	"http_limit", "app",
}

func (r RejectReason) String() string { return rejectNames[r] }

// closeBuckets: codes 1000–1015 each, then 3000–3999, 4000–4999, "none" (an
// empty Close) and anything else.
const (
	closeBucket3xxx = 16 + iota
	closeBucket4xxx
	closeBucketNone
	closeBucketOther
	numCloseBuckets
)

func closeBucket(code ws.StatusCode) int {
	switch {
	case code == 0:
		return closeBucketNone
	case code >= 1000 && code <= 1015:
		return int(code - 1000)
	case code >= 3000 && code <= 3999:
		return closeBucket3xxx
	case code >= 4000 && code <= 4999:
		return closeBucket4xxx
	}
	return closeBucketOther
}

// CloseCodeLabel names bucket i of Stats.ClosesReceived/ClosesSent.
func CloseCodeLabel(i int) string {
	switch {
	case i < 16:
		return itoa(1000 + i)
	case i == closeBucket3xxx:
		return "3xxx"
	case i == closeBucket4xxx:
		return "4xxx"
	case i == closeBucketNone:
		return "none"
	}
	return "other"
}

type counters struct {
	accepted       atomic.Uint64
	upgraded       atomic.Uint64
	rejects        [numRejectReasons]atomic.Uint64
	closesIn       [numCloseBuckets]atomic.Uint64
	closesOut      [numCloseBuckets]atomic.Uint64
	pushes         atomic.Uint64
	pushesSkipped  atomic.Uint64
	overflows      atomic.Uint64
	httpHandoffs   atomic.Uint64
	idlePings      atomic.Uint64
	idleCloses     atomic.Uint64
	bufferRefusals atomic.Uint64 // closed with 1013: held bytes would pass MaxBuffered
	tickLagNs      atomic.Int64  // lag of the last wheel tick
	tickLagMaxNs   atomic.Int64
	appPanics      atomic.Uint64 // App methods (and OnUpgrade) that panicked
	resets         atomic.Uint64 // descriptors closed abortively (RST), bytes still unsent
	offloaded      atomic.Uint64 // jobs Conn.Go accepted
	offloadRefused atomic.Uint64 // Conn.Go calls refused: backlog full or MaxBuffered reached
	offloadDropped atomic.Uint64 // accepted jobs dropped unrun: Shutdown's context ended first

	// Data messages sent through the application's handles, from any
	// goroutine: striped by descriptor so that senders on different cores
	// rarely share a cache line.
	out [outStripes]outStripe
}

const outStripes = 8

type outStripe struct {
	msgs, bytes atomic.Uint64
	deflated    atomic.Uint64 // of msgs, those sent compressed (RSV1)
	_           [40]byte
}

func (c *counters) reject(r RejectReason) { c.rejects[r].Add(1) }

// countOut counts one data message of n payload bytes sent on fd; z: it
// went compressed.
func (c *counters) countOut(fd, n int, z bool) {
	st := &c.out[fd&(outStripes-1)]
	st.msgs.Add(1)
	st.bytes.Add(uint64(n))
	if z {
		st.deflated.Add(1)
	}
}

// workerStats are the counters the frame path bumps, one set per worker.
type workerStats struct {
	msgsIn, bytesIn  atomic.Uint64
	pollEvents       atomic.Uint64
	pingsIn, pongsIn atomic.Uint64
	turns            atomic.Uint64
	busyNs           atomic.Int64
	// permessage-deflate (deflate.go)
	deflateIn       atomic.Uint64 // compressed messages received and inflated
	deflateDeclined atomic.Uint64 // permessage-deflate offers declined (bad or unknown parameters)
	inflateTooBig   atomic.Uint64 // closed with 1009: a message inflated past MaxMessage
	inflateInvalid  atomic.Uint64 // closed with 1007: not a valid DEFLATE stream
	_               [64]byte      // keep the next worker's counters off this cache line
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Uptime         time.Duration
	Live           int64  // descriptors held (handshaking, open, closing, and HTTPConns)
	Open           int64  // upgraded WebSocket connections
	Accepted       uint64 // TCP connections accepted
	Upgraded       uint64 // successful upgrades
	Rejected       uint64 // sum of RejectedBy
	RejectedBy     [numRejectReasons]uint64
	MessagesIn     uint64 // complete data messages received
	MessagesOut    uint64 // data messages sent through Conn (Send, SendFrame, Broadcast)
	BytesIn        uint64 // payload bytes of MessagesIn
	BytesOut       uint64 // payload bytes of MessagesOut
	PingsIn        uint64
	PongsIn        uint64
	PongsOut       uint64
	ClosesReceived [numCloseBuckets]uint64 // by CloseCodeLabel
	ClosesSent     [numCloseBuckets]uint64
	Pushes         uint64        // time frames written or queued
	PushesSkipped  uint64        // time frames skipped (one still queued, or queue full)
	Overflows      uint64        // connections closed for passing MaxOutbound
	HTTPHandoffs   uint64        // plain HTTP requests handed to net/http
	IdlePings      uint64        // pings sent to silent connections
	IdleCloses     uint64        // connections closed for staying silent after a ping
	PollEvents     uint64        // readiness events dispatched by the poller
	WorkerTurns    uint64        // times a worker ran a connection
	WorkerBusy     time.Duration // total time workers spent running connections
	Buffered       int64         // bytes held for incomplete frames and messages, and Conn.Go's copies (capacity)
	BufferRefusals uint64        // connections closed with 1013 at the MaxBuffered budget
	AppPanics      uint64        // App methods and OnUpgrade calls that panicked (connection closed with 1011 / 500)
	Resets         uint64        // connections closed abortively (RST) because bytes for the peer were still unsent
	Offloaded      uint64        // jobs Conn.Go accepted
	OffloadRefused uint64        // Conn.Go calls that reported Skipped (backlog full, or MaxBuffered)
	OffloadDropped uint64        // accepted jobs that never ran: Shutdown's context ended first
	OffloadPending int64         // accepted jobs not yet finished
	TickLag        time.Duration // how late the last wheel tick ran
	TickLagMax     time.Duration // the worst tick lag since start

	HTTPConns int64 // descriptors handed to net/http and not yet closed (also in Live)

	// permessage-deflate (Config.Deflate)
	DeflateIn       uint64 // compressed messages received (in MessagesIn too)
	DeflateOut      uint64 // data messages sent compressed (in MessagesOut too)
	DeflateDeclined uint64 // permessage-deflate offers declined for bad or unknown parameters
	InflateTooBig   uint64 // connections closed with 1009: a message inflated past MaxMessage
	InflateInvalid  uint64 // connections closed with 1007: an invalid DEFLATE stream
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	st := Stats{
		Uptime:         time.Since(s.epoch),
		Live:           s.live.Load(),
		Open:           s.open.Load(),
		Accepted:       c.accepted.Load(),
		Upgraded:       c.upgraded.Load(),
		Pushes:         c.pushes.Load(),
		PushesSkipped:  c.pushesSkipped.Load(),
		Overflows:      c.overflows.Load(),
		HTTPHandoffs:   c.httpHandoffs.Load(),
		IdlePings:      c.idlePings.Load(),
		IdleCloses:     c.idleCloses.Load(),
		Buffered:       s.buffered.Load(),
		BufferRefusals: c.bufferRefusals.Load(),
		AppPanics:      c.appPanics.Load(),
		Resets:         c.resets.Load(),
		Offloaded:      c.offloaded.Load(),
		OffloadRefused: c.offloadRefused.Load(),
		OffloadDropped: c.offloadDropped.Load(),
		OffloadPending: s.off.pending.Load(),
		TickLag:        time.Duration(c.tickLagNs.Load()),
		TickLagMax:     time.Duration(c.tickLagMaxNs.Load()),
	}
	st.HTTPConns = s.httpConns.Load()
	st.Live += st.HTTPConns
	for _, w := range s.workers {
		ws := &w.st
		st.MessagesIn += ws.msgsIn.Load()
		st.BytesIn += ws.bytesIn.Load()
		st.PingsIn += ws.pingsIn.Load()
		st.PongsIn += ws.pongsIn.Load()
		st.WorkerTurns += ws.turns.Load()
		st.PollEvents += ws.pollEvents.Load()
		st.WorkerBusy += time.Duration(ws.busyNs.Load())
		st.DeflateIn += ws.deflateIn.Load()
		st.DeflateDeclined += ws.deflateDeclined.Load()
		st.InflateTooBig += ws.inflateTooBig.Load()
		st.InflateInvalid += ws.inflateInvalid.Load()
	}
	st.PongsOut = st.PingsIn // every ping is answered with one pong
	for i := range c.out {
		st.MessagesOut += c.out[i].msgs.Load()
		st.BytesOut += c.out[i].bytes.Load()
		st.DeflateOut += c.out[i].deflated.Load()
	}
	for i := range st.RejectedBy {
		st.RejectedBy[i] = c.rejects[i].Load()
		st.Rejected += st.RejectedBy[i]
	}
	for i := range st.ClosesReceived {
		st.ClosesReceived[i] = c.closesIn[i].Load()
		st.ClosesSent[i] = c.closesOut[i].Load()
	}
	return st
}

// upgraderReason maps an Upgrader error to a reason.
func upgraderReason(err error) RejectReason {
	switch {
	case errors.Is(err, ws.ErrHandshakeBadMethod):
		return RejectMethod
	case errors.Is(err, ws.ErrHandshakeBadProtocol), errors.Is(err, ws.ErrHandshakeUpgradeRequired):
		return RejectVersion
	case errors.Is(err, errConnLimit):
		return RejectConnLimit
	}
	return RejectBadRequest
}
