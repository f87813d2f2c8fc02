package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/gobwas/ws"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsmill/wsmill/poller"
)

// acceptBackoff is the pause after a failed accept before trying again.
const acceptBackoff = 10 * time.Millisecond

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Server accepts TCP connections, upgrades WebSocket requests on the raw
// socket and runs the application (Config.App) on them. See the package doc
// for the design.
type Server struct {
	cfg     Config
	app     App
	drainer Drainer   // cfg.App, when it has OnDrain
	workers []*worker // one event loop each; a conn belongs to workers[fd % len]
	table   table
	wheel   *wheel
	epoch   time.Time
	hsList  deadlineList // conns in phaseHandshake
	clList  deadlineList // conns in phaseClosing

	live atomic.Int64 // accepted descriptors we own (all phases)
	// buffered is the capacity of every held buffer (incomplete frames and
	// messages, held.go), charged against Config.MaxBuffered.
	buffered atomic.Int64
	open     atomic.Int64 // upgraded connections (counts against MaxConns)
	stats    counters
	topics   topicTable   // topic.go
	watch    func(string) // WatchTopics' fn, set before Serve
	off      offloadPool  // Conn.Go's goroutines, started at the first Go
	fan      fanPool      // Broadcast's and Publish's helpers past broadcastSerial (fanout.go)

	http   *http.Server
	httpLn *bridgeListener

	acceptStop chan struct{} // closed by Shutdown: every Serve returns

	mu        sync.Mutex
	listeners []*listener // every listener passed to Serve (guarded by mu)
	shutdown  atomic.Bool
	started   bool
	stopOnce  sync.Once

	// spare is a descriptor kept open to be given up when the open-file
	// limit is hit (see acceptor), one for all listeners: -1 when none.
	spareMu sync.Mutex
	spare   int

	httpConns atomic.Int64  // descriptors handed to net/http and not yet closed
	sampleOff atomic.Uint32 // SampleSockets' stride offset

	// testHookRegister, when set (tests only), runs inside register after
	// the table handed out c and before c's descriptor joins the poller.
	testHookRegister func(c *conn)
	// accept4 is the accept system call; tests make it fail on demand.
	accept4 func(lfd int, sa *syscall.RawSockaddrAny) (int, syscall.Errno)
	// unsent reports what the kernel still holds for the peer of a
	// descriptor (SIOCOUTQ). Tests that drive the engine over AF_UNIX
	// pairs, where it means "not read by the peer yet" and a close leaves
	// no orphan, replace it.
	unsent func(fd int) int
}

// New prepares a server; Serve starts it.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:   cfg,
		app:   cfg.App,
		epoch: time.Now(),

		acceptStop: make(chan struct{}),
		spare:      -1,
		accept4:    accept4,
		unsent:     unsent,
	}
	s.table.init(cfg.MaxConns)
	s.topics.init()
	s.off.s = s
	s.drainer, _ = cfg.App.(Drainer)
	s.hsList.timeout = cfg.HandshakeTimeout
	s.clList.timeout = cfg.CloseTimeout
	s.wheel = newWheel(s, cfg.PushInterval)
	s.hsList.wheel, s.clList.wheel = s.wheel, s.wheel
	for i := range cfg.Workers {
		w, err := newWorker(s, i)
		if err != nil {
			s.closeWorkers()
			return nil, err
		}
		s.workers = append(s.workers, w)
	}
	s.httpLn = newBridgeListener()
	s.http = &http.Server{
		Handler:           cfg.Handler,
		ReadHeaderTimeout: cfg.HandshakeTimeout,
		ErrorLog:          nil,
		// Reading is bounded by prefixConn (the whole request by the
		// handshake deadline); writing the response by HTTPTimeout.
		WriteTimeout: cfg.HTTPTimeout,
		ConnState: func(nc net.Conn, st http.ConnState) {
			if pc, ok := nc.(*prefixConn); ok && st == http.StateHijacked {
				pc.hijack()
			}
		},
	}
	// Every plain HTTP request comes on its own connection, so every request
	// passes through our router first (a keep-alive connection would let a
	// later upgrade request reach net/http).
	s.http.SetKeepAlivesEnabled(false)
	return s, nil
}

// Config returns the effective configuration (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// now is the server's monotonic clock.
func (s *Server) now() time.Duration { return time.Since(s.epoch) }

// owner is the worker that runs the connection on fd: the number decides,
// so no field records it and every event of a descriptor reaches the
// same event loop.
func (s *Server) owner(fd int) *worker { return s.workers[fd%len(s.workers)] }

// closeWorkers stops every worker's event loop; when it returns none runs.
func (s *Server) closeWorkers() {
	for _, w := range s.workers {
		w.poll.Close()
	}
}

// listener is one listening socket being served: its Serve goroutine
// accepts on fd whenever the poller reports it readable (wake).
type listener struct {
	ln   net.Listener
	fd   int
	wake chan struct{} // fd is readable (capacity 1)
	done chan struct{} // closed when its Serve has left the poller
}

// onEvent is the listener's poller callback (AddFunc): it runs on a
// worker's poll goroutine and only wakes the Serve goroutine.
func (l *listener) onEvent(int, poller.Event) {
	select {
	case l.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Serve accepts connections on ln until Shutdown, and returns
// ErrServerClosed then. ln must be a TCP listener (its descriptor is used
// directly with accept4). Serve may be called several times, on different
// listeners, from different goroutines: every listener feeds the same
// workers, wheel, connection table and limits (Config.MaxConns counts the
// connections of all of them), Broadcast reaches the clients of all of
// them, and Shutdown stops every Serve and closes every listener. What a
// listener costs beyond its socket is its goroutine, blocked while no
// client arrives. The workers' event loops run from New; the first Serve
// starts the wheel and the HTTP server.
func (s *Server) Serve(ln net.Listener) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("server: listener %T has no raw descriptor", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	l := &listener{ln: ln, fd: -1, wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	for _, o := range s.listeners {
		if o.ln == ln {
			s.mu.Unlock()
			return errors.New("server: Serve called twice with one listener")
		}
	}
	if err := rc.Control(func(fd uintptr) { l.fd = int(fd) }); err != nil {
		s.mu.Unlock()
		return err
	}
	// Shutdown closes ln from here on, even if this Serve fails below.
	s.listeners = append(s.listeners, l)
	// The listeners' sockets are spread over the workers' epoll sets (they
	// are in the Go runtime's too, which does no harm): the worker only
	// relays the edge to this goroutine.
	lp := s.workers[(len(s.listeners)-1)%len(s.workers)].poll
	if s.httpLn.addr == nil {
		s.httpLn.addr = ln.Addr()
	}
	if !s.started {
		s.started = true
		s.start()
	}
	s.mu.Unlock()
	defer close(l.done)

	if err := lp.AddFunc(l.fd, l.onEvent); err != nil {
		return err
	}
	a := acceptor{s: s}
	defer lp.Del(l.fd)
	backoff := time.NewTimer(0)
	<-backoff.C
	for {
		wait := l.wake
		if err := a.acceptAll(l.fd); err != nil {
			// ENOBUFS, ENOMEM, out of descriptors with no spare: back off,
			// then accept again without waiting for an edge. The listener
			// is edge-triggered; connections already in the backlog would
			// otherwise wait for the next client to arrive.
			s.cfg.OnError(err)
			backoff.Reset(acceptBackoff)
			wait = nil
		}
		select {
		case <-wait:
		case <-backoff.C:
		case <-s.acceptStop:
			return ErrServerClosed
		}
	}
}

func (s *Server) start() {
	s.spare = openSpare()
	go s.wheel.run()
	go func() {
		if err := s.http.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.cfg.OnError(err)
		}
	}()
}

// register takes ownership of a freshly accepted non-blocking socket whose
// peer address accept4 wrote in sa. The conn stays in schedSetup (see
// table.go) until every field is written; only then may a worker run it.
func (s *Server) register(fd int, sa *syscall.RawSockaddrAny) {
	c := s.table.acquire(fd)
	if c == nil { // descriptor number beyond the table: cannot track it
		syscall.Close(fd)
		return
	}
	c.mu.Lock() // a stale handle may be looking (and finding another gen)
	c.setPeer(sa)
	c.mu.Unlock()
	if s.testHookRegister != nil {
		s.testHookRegister(c)
	}
	s.live.Add(1)
	s.stats.accepted.Add(1)
	c.phase = phaseHandshake
	c.registered = true
	s.hsList.push(c, s.now())
	if err := s.owner(fd).poll.Add(fd); err != nil {
		// Still in setup: no worker has seen c, so it is ours to undo.
		s.cfg.OnError(err)
		c.registered = false
		s.hsList.remove(c)
		s.release(c)
		syscall.Close(fd)
		return
	}
	// Events that came during setup (the first edge of this socket, a
	// stale one, the handshake deadline, shutdown) are in c.ev: notify
	// dropped them while c was in setup, so schedule c here. dispatch ORs
	// ev before it calls notify, so an event that this load misses finds
	// c idle and schedules it itself.
	c.sched.Store(schedIdle)
	if c.ev.Load() != 0 {
		s.notify(c)
	}
}

// notify schedules c on its worker unless it is already queued or running
// (see the state machine in conn.go). Safe from any goroutine; never
// blocks.
func (s *Server) notify(c *conn) {
	for {
		switch c.sched.Load() {
		case schedIdle:
			if c.sched.CompareAndSwap(schedIdle, schedQueued) {
				s.owner(c.fd).enqueue(c)
				return
			}
		case schedRunning:
			if c.sched.CompareAndSwap(schedRunning, schedRerun) {
				return
			}
		default: // queued, rerun: it will run; dead: dropped; setup:
			// kept in c.ev, register schedules it (see table.go)
			return
		}
	}
}

func (s *Server) expireDeadlines(now time.Duration) {
	s.hsList.expire(s, now)
	s.clList.expire(s, now)
}

// closeConn closes c's descriptor and releases everything it holds. Only the
// worker running c calls it; c must not be touched afterwards.
//
// The close is abortive (a RST) when bytes for the peer are still waiting,
// in c's queue or in the kernel's send queue: the server is giving up on
// the client (close timeout, overflow, idle timeout, the end of Shutdown's
// drain, a FIN while it had not read what it asked for), and a graceful
// close would hand those bytes to an orphaned socket that keeps them, and
// probes the peer's zero window, for as long as the peer answers. Closes
// with nothing left for the peer stay graceful (a FIN); after a Close
// exchange finishClosing waits for the kernel to deliver first.
func (s *Server) closeConn(c *conn) { s.closeFD(c, false) }

// closeFD is closeConn; graceful keeps the close graceful whatever is
// still unacknowledged (Shutdown's goodbye to a client that had taken
// everything before it).
func (s *Server) closeFD(c *conn, graceful bool) {
	fd := c.fd
	queued := s.detach(c)
	if !graceful && (queued > 0 || s.unsent(fd) > 0) {
		setResetOnClose(fd)
		s.stats.resets.Add(1)
	}
	syscall.Close(fd)
}

// detach releases c's state but leaves its descriptor open (for the HTTP
// hand-off, which takes the descriptor over). It returns the bytes that
// were still in c's outbound queue.
func (s *Server) detach(c *conn) int {
	c.mu.Lock()
	c.closed = true
	queued := c.pending()
	out := c.out
	c.out, c.outHead = nil, 0
	c.mu.Unlock()
	putBuf(out)
	// Out of every topic before anything else: with closed set nothing
	// adds c to one again, and a publish that still finds it reports Closed.
	s.leaveTopics(c)

	wasOpen := c.phase == phaseOpen
	switch c.phase {
	case phaseHandshake:
		s.hsList.remove(c)
	case phaseOpen:
		s.wheel.remove(c)
		s.dropOpen()
	case phaseClosing:
		s.clList.remove(c)
	}
	if wasOpen {
		// Ended without a Close: 1006 ([RFC6455 7.1.5]). Sends fail
		// (closed is set), but the handle still reads the value and
		// the address.
		s.callClose(c, CloseAbnormal)
	}
	// OnClose has had its look: from now on a handle kept by the
	// application sees the zero values, and the value can be collected.
	c.mu.Lock()
	c.ext, c.peerFam = nil, 0
	c.mu.Unlock()
	s.resetRead(c)
	if c.registered {
		c.registered = false
		if err := s.owner(c.fd).poll.Del(c.fd); err != nil && !errors.Is(err, poller.ErrClosed) {
			s.cfg.OnError(err)
		}
	}
	s.release(c)
	return queued
}

// release marks c dead; after this the table may hand the struct to the
// next connection that gets the same descriptor number.
func (s *Server) release(c *conn) {
	c.phase = phaseFree
	if s.live.Add(-1) < 0 {
		// Like sync.WaitGroup's negative counter: a descriptor was
		// released twice, and Shutdown would stop waiting too early.
		panic("server: live descriptor count went negative")
	}
	c.sched.Store(schedDead)
}

// dropOpen gives back a MaxConns slot.
func (s *Server) dropOpen() {
	if s.open.Add(-1) < 0 {
		panic("server: open connection count went negative")
	}
}

// Shutdown stops accepting, sends Close 1001 (going away) to every open
// connection, waits until they are gone or ctx is done, then closes whatever
// is left and stops the workers, the wheel and the poller.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.shutdown.CompareAndSwap(false, true) {
		return ErrServerClosed
	}
	s.mu.Lock()
	lns, started := s.listeners, s.started
	s.mu.Unlock()
	close(s.acceptStop)
	for _, l := range lns {
		<-l.done // its accept loop has unregistered the descriptor
		l.ln.Close()
	}
	s.closeSpare()
	if !started {
		s.closeWorkers()
		return s.shutdownHTTP(ctx)
	}
	// Plain HTTP requests drain in parallel: net/http's Shutdown polls its
	// connections with a backoff of up to 500 ms, which must not hold back
	// the WebSocket clients' Close 1001.
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.shutdownHTTP(ctx) }()

	s.table.each(func(c *conn) {
		c.mu.Lock()
		if !c.closed { // closed is set when the conn is released
			c.ev.Or(evGoingAway)
			s.notify(c)
		}
		c.mu.Unlock()
	})
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	// Jobs handed to Conn.Go before their connection closed still run:
	// wait for them too.
	for s.live.Load() > 0 || s.off.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		case <-tick.C:
		}
	}
	// The HTTP drain ends by ctx at the latest; stop (which closes what
	// net/http still holds) must not cut it short.
	httpErr := <-httpDone
	s.stop()
	return errors.Join(err, httpErr)
}

// goingAway is the Close frame a server sends at shutdown: 1001, no reason.
var goingAway = [4]byte{0x80 | byte(ws.OpClose), 2, byte(CloseGoingAway >> 8), byte(CloseGoingAway & 0xff)}

// goodbye ends an open connection that Shutdown's drain did not reach (its
// worker was still behind when the context ended): Close 1001 goes out
// behind what is queued if the socket takes it all at once, and OnClose
// reports 1001 as for the clients the drain reached. Nothing waits for the
// peer's answer: the descriptor is closed next, gracefully when the goodbye
// went out to a client that had taken everything before it (the result),
// with a reset otherwise (closeConn). Called by stop, after the workers
// have returned.
func (s *Server) goodbye(c *conn) (graceful bool) {
	c.mu.Lock()
	sent := false
	if !c.closeSent && c.flushLocked() && c.pending() == 0 && s.unsent(c.fd) == 0 {
		n, errno := writeFD(c.fd, goingAway[:], nil)
		sent = errno == 0 && n == len(goingAway)
	}
	if sent {
		c.closeSent, c.closeCode = true, uint16(CloseGoingAway)
		s.stats.closesOut[closeBucket(ws.StatusGoingAway)].Add(1)
	}
	c.mu.Unlock()
	if sent {
		s.wheel.remove(c)
		s.dropOpen()
		c.phase = phaseClosing // detach then reports no 1006
		s.leaveTopics(c)
		s.callClose(c, CloseGoingAway)
	}
	return sent
}

// shutdownHTTP lets net/http finish its requests until ctx is done, then
// closes the connections left: net/http's Shutdown does not close active
// ones, and a request stalled in its body would outlive the server.
func (s *Server) shutdownHTTP(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
	}
	return err
}

// stop ends the wheel, the poller and the workers, then closes every
// descriptor still held, net/http's included. After stop no goroutine of
// the server runs (but a handler still running, or a hijacked connection,
// is the handler's).
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		close(s.wheel.stop)
		<-s.wheel.done
		s.closeWorkers() // their event loops have returned
		s.table.each(func(c *conn) {
			graceful := false
			if c.phase == phaseOpen {
				graceful = s.goodbye(c)
			}
			if c.phase != phaseFree {
				s.closeFD(c, graceful)
			}
		})
		s.httpLn.Close()
		s.http.Close()
		s.off.stop()
		s.fan.stop()
	})
}
