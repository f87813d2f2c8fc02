//go:build linux

package poller

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/mailru/easygo/netpoll"
	"golang.org/x/sys/unix"
)

// epoll adapts easygo's netpoll.Epoll, whose callbacks are per descriptor
// (func(EpollEvent), no fd argument), to a single Dispatch function.
//
// easygo wants a distinct callback per descriptor. Making a closure on every
// Add would allocate per connection, so one closure per descriptor number is
// made the first time that number is seen and kept: the kernel reuses small
// numbers, and after warm-up Add allocates nothing.
//
// The closures are kept in chunks of cbChunk numbers, a chunk made the first
// time a number in its range is added, under a directory that doubles as
// needed: what a poller holds grows with the numbers it has seen, never
// with the process's open-file limit or with the numbers other pollers (or
// a server's other workers, each with its own poller) were given. A new
// poller holds nothing.
type epoll struct {
	ep       *netpoll.Epoll
	dispatch Dispatch

	// Wake: an eventfd in the same epoll set (edge-triggered), written
	// only when no wake-up is pending yet.
	wakeFD      int
	wakePending atomic.Bool

	mu  sync.Mutex
	cbs []*cbBlock // cbs[fd>>cbChunkShift][fd&(cbChunk-1)]; guarded by mu
}

const (
	cbChunkShift = 8 // 256 closures (2 KiB) per chunk
	cbChunk      = 1 << cbChunkShift
)

type cbBlock [cbChunk]func(netpoll.EpollEvent)

const registerEvents = netpoll.EPOLLIN | netpoll.EPOLLOUT | netpoll.EPOLLRDHUP | netpoll.EPOLLET

// New starts an epoll instance and its wait goroutine. onWaitError is called
// (from the wait goroutine) if epoll_wait fails for good; it may be nil.
func New(dispatch Dispatch, onWaitError func(error)) (Poller, error) {
	if dispatch == nil {
		return nil, errors.New("poller: nil dispatch")
	}
	if onWaitError == nil {
		onWaitError = func(error) {}
	}
	ep, err := netpoll.EpollCreate(&netpoll.EpollConfig{OnWaitError: onWaitError})
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	p := &epoll{ep: ep, dispatch: dispatch}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		ep.Close()
		return nil, os.NewSyscallError("eventfd", err)
	}
	p.wakeFD = fd
	if err := ep.Add(fd, netpoll.EPOLLIN|netpoll.EPOLLET, p.onWake); err != nil {
		ep.Close()
		unix.Close(fd)
		return nil, os.NewSyscallError("epoll_ctl add", err)
	}
	return p, nil
}

// onWake runs on the poll goroutine when the eventfd was written.
func (p *epoll) onWake(e netpoll.EpollEvent) {
	if e&0x20 != 0 { // closed: see translate
		return
	}
	// Reset the counter first, then clear the flag, then dispatch. In the
	// other order a Wake between the two would write, its write would be
	// consumed by this read, and epoll, which re-checks readiness when it
	// delivers an edge-triggered event, would drop its event: the flag
	// would stay set with no wake-up coming, and every later Wake would be
	// lost. In this order a Wake before the Store is covered by this
	// dispatch (its caller queued its work first) and one after it writes
	// a fresh event.
	var b [8]byte
	unix.Read(p.wakeFD, b[:])
	p.wakePending.Store(false)
	p.dispatch(-1, EventWake)
}

func (p *epoll) Wake() error {
	if !p.wakePending.CompareAndSwap(false, true) {
		return nil // one is on its way
	}
	one := [8]byte{1}
	for {
		_, err := unix.Write(p.wakeFD, one[:])
		switch err {
		case nil, unix.EAGAIN: // EAGAIN: the counter is full, a wake-up is due anyway
			return nil
		case unix.EINTR:
			continue
		}
		p.wakePending.Store(false)
		return os.NewSyscallError("write eventfd", err)
	}
}

func (p *epoll) callback(fd int) func(netpoll.EpollEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := fd >> cbChunkShift
	if i >= len(p.cbs) {
		cbs := make([]*cbBlock, max(2*len(p.cbs), i+1, 4))
		copy(cbs, p.cbs)
		p.cbs = cbs
	}
	ch := p.cbs[i]
	if ch == nil {
		ch = new(cbBlock)
		p.cbs[i] = ch
	}
	cb := ch[fd&(cbChunk-1)]
	if cb == nil {
		dispatch := p.dispatch
		cb = func(e netpoll.EpollEvent) { dispatch(fd, translate(e)) }
		ch[fd&(cbChunk-1)] = cb
	}
	return cb
}

func translate(e netpoll.EpollEvent) Event {
	var ev Event
	if e&(netpoll.EPOLLIN|netpoll.EPOLLRDHUP|netpoll.EPOLLPRI) != 0 {
		ev |= EventRead
	}
	if e&netpoll.EPOLLOUT != 0 {
		ev |= EventWrite
	}
	if e&(netpoll.EPOLLHUP|netpoll.EPOLLERR|netpoll.EPOLLRDHUP) != 0 {
		ev |= EventHangup | EventRead
	}
	// easygo delivers 0x20 (its private _EPOLLCLOSED) to every callback
	// when the instance is closed.
	if e&0x20 != 0 {
		ev = EventClosed
	}
	return ev
}

func (p *epoll) Add(fd int) error { return p.add(fd, p.callback(fd)) }

func (p *epoll) AddFunc(fd int, d Dispatch) error {
	if d == nil {
		return errors.New("poller: nil dispatch")
	}
	return p.add(fd, func(e netpoll.EpollEvent) { d(fd, translate(e)) })
}

func (p *epoll) add(fd int, cb func(netpoll.EpollEvent)) error {
	err := p.ep.Add(fd, registerEvents, cb)
	if err != nil && !errors.Is(err, netpoll.ErrRegistered) && !errors.Is(err, netpoll.ErrClosed) {
		// easygo records the callback before epoll_ctl and keeps it when
		// the call fails (ENOSPC past fs.epoll.max_user_watches, ENOMEM,
		// EBADF, EPERM), so every later Add of this number would answer
		// ErrRegistered: the number would be lost for good. Its Del drops
		// the record; its epoll_ctl(DEL) fails, as nothing was added.
		p.ep.Del(fd)
	}
	return wrap("epoll_ctl add", err)
}

func (p *epoll) Del(fd int) error {
	return wrap("epoll_ctl del", p.ep.Del(fd))
}

func (p *epoll) Close() error {
	err := p.ep.Close()
	if err == nil {
		unix.Close(p.wakeFD)
	}
	return wrap("close", err)
}

func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, netpoll.ErrClosed):
		return ErrClosed
	case errors.Is(err, netpoll.ErrRegistered), errors.Is(err, netpoll.ErrNotRegistered):
		return fmt.Errorf("poller: %s: %w", op, err)
	default:
		return os.NewSyscallError(op, err)
	}
}
