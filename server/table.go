package server

import (
	"runtime"
	"sync/atomic"
	"syscall"
)

// table maps a descriptor number to its conn, like the runtime's fd table.
// Conn structs are made once per descriptor number and reused when the
// kernel hands the number out again; each reuse increments conn.gen, so
// anything that remembers (conn, gen) can tell a closed connection from the
// new one on the same number. An event for a closed descriptor reaches a
// dead conn and is dropped, or reaches its successor as a spurious event
// (harmless: a read returns EAGAIN); it can never deliver one connection's
// bytes to another, because bytes belong to the kernel socket, not to the
// number.
type table struct {
	slots []atomic.Pointer[conn]
}

// maxTable bounds the table for huge open-file limits: 4M entries (32 MiB of
// virtual memory, touched only where descriptors are actually used).
const maxTable = 1 << 22

func newTable(maxConns int) table {
	n := maxConns + 2*ReservedFDs
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur > uint64(n) {
		n = int(min(rl.Cur, maxTable))
	}
	return table{slots: make([]atomic.Pointer[conn], n)}
}

func (t *table) size() int { return len(t.slots) }

func (t *table) get(fd int) *conn {
	if uint(fd) >= uint(len(t.slots)) {
		return nil
	}
	return t.slots[fd].Load()
}

// acquire returns a conn ready for a new connection on fd, or nil when fd
// is beyond the table.
func (t *table) acquire(fd int) *conn {
	if uint(fd) >= uint(len(t.slots)) {
		return nil
	}
	c := t.slots[fd].Load()
	if c == nil {
		c = &conn{fd: fd, slot: -1}
		c.sched.Store(schedIdle)
		t.slots[fd].Store(c)
		return c
	}
	// The previous owner stores schedDead just before it closes the
	// descriptor, so the number can only be reused after that store; the
	// loop only covers the window where this goroutine has not observed it
	// yet. Observing it (an atomic load) orders all of the old owner's
	// writes before ours.
	for c.sched.Load() != schedDead {
		runtime.Gosched()
	}
	c.gen++
	c.ev.Store(0)
	c.pingAt = 0 // not in the wheel now: no lock needed
	c.mu.Lock()
	c.closed, c.closeSent = false, false
	c.outTotal, c.outDone, c.timeEnd, c.bigEnd = 0, 0, 0, 0
	c.mu.Unlock()
	c.sched.Store(schedIdle)
	return c
}

// each calls fn for every conn struct in the table (live or not).
func (t *table) each(fn func(*conn)) {
	for i := range t.slots {
		if c := t.slots[i].Load(); c != nil {
			fn(c)
		}
	}
}
