package poller

import "errors"

// Event is a set of readiness conditions reported for a descriptor.
type Event uint32

const (
	// EventRead: the socket has bytes to read, or the peer shut down its
	// writing side (read will return 0).
	EventRead Event = 1 << iota
	// EventWrite: the socket's send buffer has room again.
	EventWrite
	// EventHangup: the peer shut down its side or the connection broke
	// (EPOLLRDHUP, EPOLLHUP, EPOLLERR): reading on will reach EOF or an
	// error, so the consumer must read until it does, not stop at a short
	// read.
	EventHangup
	// EventClosed: the poller itself was closed; no more events follow for
	// this descriptor.
	EventClosed
	// EventWake: Wake was called. It comes with fd -1.
	EventWake
)

// Dispatch receives the events of one descriptor. It runs on the poller's
// goroutine: it must return quickly, never block and never allocate.
type Dispatch func(fd int, ev Event)

// Poller reports readiness of registered descriptors to a Dispatch function.
type Poller interface {
	// Add registers fd, edge-triggered, for read, write and hang-up events.
	// The first EventWrite usually arrives right away (an empty send buffer
	// is writable). fd must be non-blocking and not already registered.
	Add(fd int) error

	// AddFunc registers fd like Add, but its events go to d instead of
	// the poller's Dispatch (with the same rules: d runs on the poll
	// goroutine and must not block). It is for a few long-lived
	// descriptors such as listening sockets, whose events then cost the
	// Dispatch of the connections nothing: each call allocates, and the
	// number's callback for Add is left as it was. Del unregisters it.
	AddFunc(fd int, d Dispatch) error

	// Del unregisters fd. Call it before closing fd. An event already taken
	// from the kernel may still be dispatched once after Del returns.
	Del(fd int) error

	// Wake makes the poll goroutine call Dispatch(-1, EventWake) soon, from
	// epoll_wait or between two events of a batch. Calls before that
	// dispatch coalesce into one. It is safe from any goroutine, the poll
	// goroutine included, and never blocks: it is how work for the poll
	// goroutine is handed to it.
	Wake() error
	// Close stops the poll goroutine and releases the epoll instance. When
	// it returns the poll goroutine has exited; every registered descriptor
	// then gets one EventClosed (on the goroutine calling Close);
	// descriptors themselves are not closed.
	Close() error
}

// ErrUnsupported is returned by New on systems without epoll.
var ErrUnsupported = errors.New("poller: epoll is only available on linux")

// ErrClosed is returned by calls on a closed Poller.
var ErrClosed = errors.New("poller: closed")
