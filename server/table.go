package server

import (
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// table maps a descriptor number to its conn, like the runtime's fd table.
// Conn structs are made once per descriptor number and reused when the
// kernel hands the number out again.
//
// What makes reuse safe:
//   - The struct is reinitialised only after its previous owner stored
//     schedDead, which it does just before closing the descriptor: the old
//     connection's worker is done with every field.
//   - The new connection stays in schedSetup until register has written
//     every field and is about to add the descriptor to the poller. An event
//     taken from epoll for the previous connection on the same number can
//     still be dispatched (easygo calls callbacks after unlocking); in setup
//     it only sets bits in ev, so no worker can run a half-built conn.
//   - Such a stale event is at worst spurious for the new connection (a read
//     returns EAGAIN). It can never deliver one connection's bytes to
//     another: bytes belong to the kernel socket, not to the number.
//   - Each reuse increments conn.gen, so anything that keeps a (conn, gen)
//     pair beyond the owner's turn can tell the closed connection from its
//     successor on the same number (the fd-reuse test checks it).
//
// Memory grows with the descriptors actually used, not with MaxConns or the
// open-file limit (a container runtime may set 2^30): the table is a
// directory of chunks of tableChunk entries (8 KiB), a chunk made the
// first time a number in its range is accepted, and the directory (8 bytes
// per chunk) starts with room for tableDirStart chunks and doubles when a
// number beyond it comes. A new Server's table is 64 bytes of directory;
// its first client costs one chunk. The table holds numbers below the
// open-file limit at New (the kernel hands out no larger one), capped at
// maxFD (the kernel's own ceiling, fs.nr_open ≤ 2^30).
//
// get is lock-free (two atomic loads and the entry's); chunks and the
// directory are made only under mu, by the accept loops (several, with
// several listeners): a directory is replaced by a larger copy under mu,
// and no chunk is added to the old one after the copy, so a reader holding
// the old directory finds every chunk it could find before.
type table struct {
	dir atomic.Pointer[[]atomic.Pointer[chunk]]
	max int        // one past the largest descriptor number the table may hold
	mu  sync.Mutex // makes chunks and grows dir
}

const (
	tableChunkShift = 10 // 1,024 entries, 8 KiB per chunk
	tableChunk      = 1 << tableChunkShift
	tableDirStart   = 8 // chunks the first directory has room for
	maxFD           = 1 << 30
)

type chunk [tableChunk]atomic.Pointer[conn]

// init sizes the table for maxConns connections, or the open-file limit if
// higher (the kernel's numbering includes every other descriptor).
func (t *table) init(maxConns int) {
	n := maxConns + 2*ReservedFDs
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur > uint64(n) {
		n = int(min(rl.Cur, maxFD))
	}
	t.max = min(n, maxFD)
	dir := make([]atomic.Pointer[chunk], min(tableDirStart, (t.max+tableChunk-1)/tableChunk))
	t.dir.Store(&dir)
}

// limit is one past the largest descriptor number the table can hold.
func (t *table) limit() int { return t.max }

func (t *table) get(fd int) *conn {
	dir := *t.dir.Load()
	if i := uint(fd) >> tableChunkShift; i < uint(len(dir)) {
		if ch := dir[i].Load(); ch != nil {
			return ch[fd&(tableChunk-1)].Load()
		}
	}
	return nil
}

// slot returns fd's entry, making its chunk (and a larger directory) if
// needed. fd must be below limit.
func (t *table) slot(fd int) *atomic.Pointer[conn] {
	i := fd >> tableChunkShift
	if dir := *t.dir.Load(); i < len(dir) {
		if ch := dir[i].Load(); ch != nil {
			return &ch[fd&(tableChunk-1)]
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	dir := *t.dir.Load()
	if i >= len(dir) {
		bigger := make([]atomic.Pointer[chunk], min(max(2*len(dir), i+1), (t.max+tableChunk-1)/tableChunk))
		for j := range dir {
			bigger[j].Store(dir[j].Load())
		}
		t.dir.Store(&bigger)
		dir = bigger
	}
	ch := dir[i].Load()
	if ch == nil {
		ch = new(chunk)
		dir[i].Store(ch)
	}
	return &ch[fd&(tableChunk-1)]
}

// acquire returns a conn for a new connection on fd, in schedSetup (no
// worker can run it until the caller moves it to schedIdle), or nil when fd
// is beyond the table.
func (t *table) acquire(fd int) *conn {
	if uint(fd) >= uint(t.limit()) {
		return nil
	}
	e := t.slot(fd)
	c := e.Load()
	if c == nil {
		c = &conn{fd: fd, slot: -1}
		c.sched.Store(schedSetup)
		e.Store(c)
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
	c.ev.Store(0)
	c.pingAt = 0 // not in the wheel now: no lock needed
	c.mu.Lock()
	c.gen++ // under mu: a Conn handle compares it under mu
	c.closed, c.closeSent, c.closeCode, c.ext = false, false, 0, nil
	c.outTotal, c.outDone, c.latestEnd, c.bigEnd = 0, 0, 0, 0
	c.mu.Unlock()
	c.sched.Store(schedSetup)
	return c
}

// each calls fn for every conn struct in the table (live or not).
func (t *table) each(fn func(*conn)) {
	dir := *t.dir.Load()
	for i := range dir {
		ch := dir[i].Load()
		if ch == nil {
			continue
		}
		for j := range ch {
			if c := ch[j].Load(); c != nil {
				fn(c)
			}
		}
	}
}
