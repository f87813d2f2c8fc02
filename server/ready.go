package server

import "sync"

// readyQueue is the FIFO of conns that have work, between those that find
// work (the poll goroutine, the wheel, the deadline lists, Shutdown, and a
// worker requeueing a conn for fairness) and the workers.
//
// The scheduling state machine on conn puts a conn in the queue at most
// once, so the queue never holds more entries than there are conns: push
// never blocks, and the ring grows (doubling) with the connections actually
// held, instead of being sized for MaxConns at startup as a buffered
// channel would have to be.
//
// An idle worker sleeps on wake; push hands out one token per sleeping
// worker it wakes, so the token channel (capacity: the number of workers)
// never fills.
type readyQueue struct {
	mu   sync.Mutex
	buf  []*conn // ring; len is a power of two
	head int
	n    int
	idle int // workers asleep (or about to be) in pop

	wake chan struct{}
}

func newReadyQueue(workers int) *readyQueue {
	return &readyQueue{buf: make([]*conn, 64), wake: make(chan struct{}, workers)}
}

// push appends c. It never blocks.
func (q *readyQueue) push(c *conn) {
	q.mu.Lock()
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = c
	q.n++
	wake := q.idle > 0
	if wake {
		q.idle--
	}
	q.mu.Unlock()
	if wake {
		q.wake <- struct{}{}
	}
}

// pop takes the oldest conn, sleeping while there is none. It returns nil
// once quit is closed.
func (q *readyQueue) pop(quit <-chan struct{}) *conn {
	for {
		q.mu.Lock()
		if q.n > 0 {
			c := q.buf[q.head]
			q.buf[q.head] = nil
			q.head = (q.head + 1) & (len(q.buf) - 1)
			q.n--
			q.mu.Unlock()
			return c
		}
		q.idle++
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-quit:
			return nil
		}
	}
}

func (q *readyQueue) grow() {
	buf := make([]*conn, 2*len(q.buf))
	k := copy(buf, q.buf[q.head:])
	copy(buf[k:], q.buf[:q.head])
	q.buf, q.head = buf, 0
}
