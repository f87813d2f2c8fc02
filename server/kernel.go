package server

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// What the kernel holds for the server's sockets. Every accepted socket's
// buffers are capped (Config.SendBuffer, Config.RecvBuffer) and a
// connection given up on with bytes unsent is reset (closeConn), so the
// bytes below are bounded by the caps; SampleSockets lets an operator see
// them, and ReadTCPMemory the machine's TCP memory they count against.

// SocketSample is what the kernel holds for the server's connections:
// Unsent and Unread are summed over the sockets read, one in every
// Sockets/Sampled of them, so Estimate scales them to the whole.
type SocketSample struct {
	Sockets   int   // connection sockets held (handshaking, open, closing)
	Sampled   int   // sockets read
	Unsent    int64 // bytes in the sampled send queues: not sent, or not acknowledged (SIOCOUTQ)
	Unread    int64 // bytes in the sampled receive queues, not read by a worker yet (SIOCINQ)
	MaxUnsent int   // the largest send queue sampled
	MaxUnread int   // the largest receive queue sampled
}

// Estimate scales the sums to every socket (exact when all were read).
func (s SocketSample) Estimate() (unsent, unread int64) {
	if s.Sampled == 0 {
		return 0, 0
	}
	return s.Unsent * int64(s.Sockets) / int64(s.Sampled), s.Unread * int64(s.Sockets) / int64(s.Sampled)
}

// SampleSockets reads the send and receive queues of about limit of the
// server's connection sockets (all of them when there are no more than
// limit; limit ≤ 0 means 4,096), spread evenly over the table. Each read is
// two ioctl(2) calls under the connection's lock, so a scrape costs
// about a microsecond per sampled socket, whatever the number of
// connections; the walk itself takes each conn's lock once. Safe from any
// goroutine.
func (s *Server) SampleSockets(limit int) SocketSample {
	if limit <= 0 {
		limit = 4096
	}
	live := int(s.live.Load() - s.httpConns.Load())
	every := 1
	if live > limit {
		every = (live + limit - 1) / limit
	}
	// A different stride offset each call, so repeated scrapes read
	// different sockets.
	off := int(s.sampleOff.Add(1))
	var ss SocketSample
	s.table.each(func(c *conn) {
		c.mu.Lock()
		defer c.mu.Unlock()
		// closed is set under mu before the descriptor is closed, and
		// cleared only once the struct belongs to a new socket: while it is
		// false under mu, fd is this connection's socket.
		if c.closed {
			return
		}
		ss.Sockets++
		if (ss.Sockets+off)%every != 0 {
			return
		}
		out, in := unsent(c.fd), unread(c.fd)
		ss.Sampled++
		ss.Unsent += int64(out)
		ss.Unread += int64(in)
		ss.MaxUnsent = max(ss.MaxUnsent, out)
		ss.MaxUnread = max(ss.MaxUnread, in)
	})
	return ss
}

// TCPMemory is the machine's TCP memory, from /proc/net/sockstat and
// net.ipv4.tcp_mem: what every TCP socket of every process holds, in pages,
// against the limits at which the kernel starts to squeeze buffers
// (Pressure) and refuses them (Max; past it, every TCP socket on the
// machine stalls). Orphans are sockets closed by their process whose
// kernel state lingers (FIN-WAIT, LAST-ACK), with whatever they still
// have to send.
type TCPMemory struct {
	Sockets                         int64 // "sockets: used": every socket of the namespace, not only TCP
	InUse, Orphans, TimeWait, Alloc int64
	Pages                           int64 // memory held by TCP sockets, in pages
	Min, Pressure, Max              int64 // net.ipv4.tcp_mem, in pages
	PageSize                        int
}

// parseSockstat reads the "TCP:" line of /proc/net/sockstat:
// "TCP: inuse 5 orphan 0 tw 2 alloc 7 mem 3". Unknown keys are ignored;
// a line without orphan and mem, or a value that is not a number, is an
// error.
func parseSockstat(b []byte) (TCPMemory, error) {
	var m TCPMemory
	for _, line := range bytes.Split(b, []byte("\n")) {
		if n, ok := bytes.CutPrefix(line, []byte("sockets: used ")); ok {
			v, err := strconv.ParseInt(string(bytes.TrimSpace(n)), 10, 64)
			if err != nil {
				return m, fmt.Errorf("server: /proc/net/sockstat: sockets used %q: %w", n, err)
			}
			m.Sockets = v
			continue
		}
		rest, ok := bytes.CutPrefix(line, []byte("TCP:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		seen := 0
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseInt(string(f[i+1]), 10, 64)
			if err != nil {
				return m, fmt.Errorf("server: /proc/net/sockstat: TCP %s %q: %w", f[i], f[i+1], err)
			}
			switch string(f[i]) {
			case "inuse":
				m.InUse = v
			case "orphan":
				m.Orphans, seen = v, seen|1
			case "tw":
				m.TimeWait = v
			case "alloc":
				m.Alloc = v
			case "mem":
				m.Pages, seen = v, seen|2
			}
		}
		if seen != 3 {
			return m, fmt.Errorf("server: /proc/net/sockstat: TCP line %q without orphan and mem", line)
		}
		return m, nil
	}
	return m, errors.New("server: /proc/net/sockstat: no TCP line")
}

// parseTCPMemLimits reads net.ipv4.tcp_mem: min, pressure and max, in
// pages.
func parseTCPMemLimits(b []byte) (lo, pressure, hi int64, err error) {
	f := bytes.Fields(b)
	if len(f) != 3 {
		return 0, 0, 0, fmt.Errorf("server: tcp_mem %q: want 3 numbers", b)
	}
	var v [3]int64
	for i := range f {
		if v[i], err = strconv.ParseInt(string(f[i]), 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("server: tcp_mem %q: %w", b, err)
		}
	}
	return v[0], v[1], v[2], nil
}
