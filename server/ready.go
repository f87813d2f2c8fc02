package server

import "sync"

// runQueue is a worker's FIFO of conns scheduled from elsewhere: by another
// goroutine (a deadline, the wheel's idle check, an application Close, an
// overflow, Shutdown) or by the worker itself, requeueing a conn for
// fairness. Events from the worker's own epoll never go through it: they
// run inline.
//
// The scheduling state machine on conn puts a conn in it at most once, so
// it never holds more entries than the worker has conns: push never
// blocks, and the ring grows (doubling) with the connections actually
// held, instead of being sized for MaxConns at startup.
type runQueue struct {
	mu   sync.Mutex
	buf  []*conn // ring; len is 0 or a power of two
	head int
	n    int
}

func (q *runQueue) push(c *conn) {
	q.mu.Lock()
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = c
	q.n++
	q.mu.Unlock()
}

// pop takes the oldest conn, or nil when empty.
func (q *runQueue) pop() *conn {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil
	}
	c := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return c
}

func (q *runQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

func (q *runQueue) grow() {
	buf := make([]*conn, max(2*len(q.buf), 64))
	k := copy(buf, q.buf[q.head:])
	copy(buf[k:], q.buf[:q.head])
	q.buf, q.head = buf, 0
}
