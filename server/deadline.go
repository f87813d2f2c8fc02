package server

import (
	"sync"
	"time"
)

// deadlineList holds connections waiting for one kind of deadline (the
// handshake, or the peer's answer to our Close). Every member has the same
// timeout, so the list is in deadline order by construction: push appends,
// and the wheel pops expired members from the head whenever it wakes; it
// plans its sleep by the head (first). Push, remove and expire are O(1)
// per connection and allocate nothing.
//
// Invariant: c.dlList == l iff c is linked in l; the links and dlList change
// only under l.mu. A conn is in at most one list.
type deadlineList struct {
	mu         sync.Mutex
	timeout    time.Duration
	head, tail *conn
	wheel      *wheel // woken when a push makes a new head; nil in tests without one
}

func (l *deadlineList) push(c *conn, now time.Duration) {
	d := now + l.timeout
	l.mu.Lock()
	c.dlList, c.dlDeadline = l, d
	c.dlPrev, c.dlNext = l.tail, nil
	head := l.tail == nil
	if head {
		l.head = c
	} else {
		l.tail.dlNext = c
	}
	l.tail = c
	l.mu.Unlock()
	// Only a new head can be due before the wheel's plan: every later
	// member is due after the head, which the wheel has planned for.
	if head && l.wheel != nil {
		l.wheel.wakeFor(deadlineWake(d))
	}
}

// first returns the head's deadline, if the list has one.
func (l *deadlineList) first() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.head == nil {
		return 0, false
	}
	return l.head.dlDeadline, true
}

func (l *deadlineList) remove(c *conn) {
	l.mu.Lock()
	if c.dlList == l {
		l.unlink(c)
	}
	l.mu.Unlock()
}

func (l *deadlineList) unlink(c *conn) {
	if c.dlPrev != nil {
		c.dlPrev.dlNext = c.dlNext
	} else {
		l.head = c.dlNext
	}
	if c.dlNext != nil {
		c.dlNext.dlPrev = c.dlPrev
	} else {
		l.tail = c.dlPrev
	}
	c.dlList, c.dlPrev, c.dlNext = nil, nil, nil
}

// expire unlinks every member whose deadline has passed and asks its worker
// to act (evTimeout).
func (l *deadlineList) expire(s *Server, now time.Duration) {
	l.mu.Lock()
	for c := l.head; c != nil && c.dlDeadline <= now; c = l.head {
		l.unlink(c)
		c.ev.Or(evTimeout)
		s.notify(c)
	}
	l.mu.Unlock()
}
