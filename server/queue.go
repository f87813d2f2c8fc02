package server

import (
	"syscall"
	"unsafe"
)

// The outbound side of a connection: non-blocking writes with a bounded
// queue behind them. Every function here runs with c.mu held, which is what
// keeps frames from the workers (pong, close), the application (sends from
// any goroutine) and the wheel (periodic pushes, pings) whole and in order
// on the wire.
//
// A frame is written straight to the socket when the queue is empty; what
// the kernel does not take is appended to the queue, and the poller's
// EventWrite tells a worker when to flush it. While the queue is not empty,
// new frames are appended behind it (writing them directly would reorder).
//
// Limits. "Counted" bytes are the pending bytes less the rest of a frame
// that was larger than MaxOutbound and went into an empty queue (bigEnd):
// an empty queue always takes one whole frame, so one echo of MaxMessage
// bytes always fits. Beyond that:
//   - a droppable (LatestOnly) frame that would pass MaxOutbound, or that
//     finds the previous droppable frame still queued, is skipped;
//   - any other frame that would pass MaxOutbound is refused with
//     writeOverflow, and the caller closes the connection (reliable bytes
//     are never dropped).

type writeResult uint8

const (
	writeWritten  writeResult = iota // the kernel took it all
	writeQueued                      // all or part of it is queued
	writeSkipped                     // droppable frame not queued, or a Close was sent
	writeOverflow                    // queue limit passed: close the connection
	writeFailed                      // socket error or connection closed
)

func (r writeResult) ok() bool { return r <= writeQueued }

// writeLocked sends the frame a+b (b may be empty).
func (c *conn) writeLocked(a, b []byte, droppable bool, limit int) writeResult {
	if c.closed {
		return writeFailed
	}
	if c.closeSent {
		// [RFC6455 5.5.1]: after sending a Close frame, the endpoint MUST
		// NOT send any more data frames (a wheel push may race the close).
		return writeSkipped
	}
	total := len(a) + len(b)
	if c.pending() > 0 && c.counted()+total > limit {
		// Before calling it a backlog, give the kernel what it will take
		// now: the queue may hold a batch gathered a moment ago (see
		// gatherLocked) or bytes EventWrite has not come to yet.
		if !c.flushLocked() {
			return writeFailed
		}
	}
	if p := c.pending(); p > 0 {
		if droppable && c.outDone < c.latestEnd {
			return writeSkipped // the previous droppable frame is still waiting
		}
		if c.counted()+total > limit {
			if droppable {
				return writeSkipped
			}
			return writeOverflow
		}
		c.appendOut(a, b)
		if droppable {
			c.latestEnd = c.outTotal
		}
		c.armDrain(limit)
		return writeQueued
	}

	n, errno := writeFD(c.fd, a, b)
	if errno != 0 && errno != syscall.EAGAIN {
		return writeFailed
	}
	if n == total {
		return writeWritten
	}
	if n < len(a) {
		c.appendOut(a[n:], b)
	} else {
		c.appendOut(b[n-len(a):], nil)
	}
	switch {
	case droppable:
		c.latestEnd = c.outTotal
	case total-n > limit:
		c.bigEnd = c.outTotal
	}
	c.armDrain(limit)
	return writeQueued
}

// armDrain notes a queue over half of the limit (MaxOutbound; a Close
// frame's limit is beyond reach): when it has emptied, the worker calls
// the App's OnDrain (flushLocked sets evDrain). The gathered batch of an
// echo (gatherLocked) does not arm it: that is the worker's own write,
// not a client falling behind.
func (c *conn) armDrain(limit int) {
	if c.pending() > limit/2 {
		c.drainArm = true
	}
}

// gatherLocked is writeLocked for a frame that the worker running c sends
// while it handles a batch of c's frames (see worker.corkConn): instead of
// a write(2) per frame, the frame joins the queue and the worker writes the
// whole batch with one write(2) when it has handled the batch (uncork),
// or as soon as gatherFlush bytes are waiting. Frames from anywhere else
// that find the queue non-empty join it behind, so the order holds. The
// result is writeQueued: the kernel has not taken the frame yet.
func (c *conn) gatherLocked(a, b []byte, limit int) writeResult {
	if c.closed || c.closeSent || c.pending() > 0 {
		r := c.writeLocked(a, b, false, limit)
		if r == writeQueued && c.pending() >= gatherFlush {
			if !c.flushLocked() {
				return writeFailed
			}
		}
		return r
	}
	// An empty queue takes one whole frame, as a direct write would.
	c.appendOut(a, b)
	if len(a)+len(b) > limit {
		c.bigEnd = c.outTotal
	}
	if c.pending() >= gatherFlush && !c.flushLocked() {
		return writeFailed
	}
	return writeQueued
}

// gatherFlush is how many gathered bytes make the worker write at once,
// without waiting for the end of the batch: a read holds up to 64 KiB of
// frames, and their echoes must not be taken for a backlog against
// MaxOutbound (64 KiB by default), while 16 echoes of 1 KiB still leave in
// one write.
const gatherFlush = 32 << 10

// counted is the queue length that counts against MaxOutbound.
func (c *conn) counted() int {
	done := max(c.outDone, c.bigEnd)
	if done >= c.outTotal {
		return 0
	}
	return int(c.outTotal - done)
}

func (c *conn) appendOut(a, b []byte) {
	n := len(a) + len(b)
	if c.out != nil && c.outHead > 0 && cap(*c.out)-len(*c.out) < n {
		// Slide the pending bytes to the front before growing.
		m := copy(*c.out, (*c.out)[c.outHead:])
		*c.out = (*c.out)[:m]
		c.outHead = 0
	}
	c.out = growBuf(c.out, n)
	*c.out = append(*c.out, a...)
	*c.out = append(*c.out, b...)
	c.outTotal += uint64(n)
}

// flushLocked writes queued bytes until the queue is empty or the socket is
// full. It returns false on a socket error.
func (c *conn) flushLocked() bool {
	for !c.closed && c.pending() > 0 {
		p := (*c.out)[c.outHead:]
		n, errno := writeFD(c.fd, p, nil)
		if n > 0 {
			c.outHead += int32(n)
			c.outDone += uint64(n)
		}
		if errno == syscall.EAGAIN {
			return true
		}
		if errno != 0 {
			return false
		}
	}
	if c.out != nil {
		putBuf(c.out)
		c.out, c.outHead = nil, 0
	}
	if c.drainArm && !c.closed {
		// The worker running c calls OnDrain at the end of its turn; a
		// flush anywhere else notifies it (Server.drained).
		c.drainArm = false
		c.ev.Or(evDrain)
	}
	return !c.closed
}

// writeFD writes a then b with one write(2) or writev(2). It never blocks
// (the socket is non-blocking) and retries on EINTR. The iovec array is
// local: it does not escape (the pointer is a uintptr only for the call),
// so writers on any goroutine share nothing and allocate nothing.
func writeFD(fd int, a, b []byte) (int, syscall.Errno) {
	for {
		var r uintptr
		var errno syscall.Errno
		switch {
		case len(b) == 0 && len(a) == 0:
			return 0, 0
		case len(b) == 0:
			r, _, errno = syscall.Syscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&a[0])), uintptr(len(a)))
		case len(a) == 0:
			r, _, errno = syscall.Syscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		default:
			var iov [2]syscall.Iovec
			iov[0].Base, iov[1].Base = &a[0], &b[0]
			iov[0].SetLen(len(a))
			iov[1].SetLen(len(b))
			r, _, errno = syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), 2)
		}
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(r), 0
	}
}

// readFD reads into p, retrying on EINTR. n == 0 with errno == 0 is EOF.
func readFD(fd int, p []byte) (int, syscall.Errno) {
	for {
		r, _, errno := syscall.Syscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(r), 0
	}
}
