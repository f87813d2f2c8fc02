package scale

// The scale client: one raw epoll loop per client process holding up to
// ~19,000 WebSocket connections, memory-frugal so that a million
// connections fit on the same machine as the servers.
//
// A goroutine per connection with a bufio.Reader costs 8+ KiB per connection
// (stack + buffer): 8 GB at a million. Here a connection is a 64-byte entry
// of a table indexed by its descriptor (scConn), the process has one 64 KiB
// read buffer, and the only per-connection allocation (hsState: the
// expected Sec-WebSocket-Accept and a buffer for a split HTTP response)
// lives from connect until the greeting and is then dropped.
//
// Everything runs on the loop goroutine: dialing (non-blocking connect from
// a source address with IP_BIND_ADDRESS_NO_PORT), the upgrade, parsing the
// frames, timing the pushes, answering a Close, and the commands from the
// parent (read by a second goroutine and passed over a channel). Epoll is
// level-triggered, so one read(2) per readiness event is enough: anything
// left is reported again by the next epoll_wait, and no read is spent on
// EAGAIN. EPOLLOUT is asked for only while the connect is in flight.
//
// Descriptor reuse: a descriptor is closed only by the loop, either while
// handling its own event or outside the event batch (timeouts, commands),
// and new sockets are opened only outside the batch, so no event of a
// batch can name a descriptor that was closed and reused in between.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/stats"
	"github.com/wsmill/wsmill/bench/internal/wsclient"

	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// Connection states.
const (
	stFree       uint8 = iota
	stConnecting       // connect(2) in flight; EPOLLOUT armed
	stUpgrading        // request written, waiting for 101 (and the greeting)
	stOpen             // greeted; pushes are counted
	stClosing          // got the server's Close, echoed it; waiting for EOF
)

// scConn is one connection's state: 64 bytes. The frame parser keeps an
// incomplete frame of up to len(part) bytes (a push is 21); a longer frame,
// which the servers never send, is skipped by its length and counted.
type scConn struct {
	last  int64    // arrival of the previous push, ns since the worker's base (0: none yet)
	phase int64    // earliest push phase seen in the window: arrival − k·interval, ns since base (0: none)
	skip  uint32   // payload bytes of an oversized frame still to skip
	count uint16   // pushes counted in the current window
	state uint8    // stFree...
	plen  uint8    // bytes held in part
	inWin bool     // open when the current window started
	part  [35]byte // an incomplete frame
}

// hsState lives from connect until the greeting.
type hsState struct {
	accept   string // expected Sec-WebSocket-Accept
	buf      []byte // HTTP response bytes until its end
	start    int64  // connect started, ns since base
	pos      int    // index in scaleWorker.pending
	response bool   // the 101 has been read whole: the greeting comes next
}

// scaleWorker is one client process's loop and everything it owns.
type scaleWorker struct {
	spec  scaleSpec
	epfd  int
	base  time.Time
	iv    int64
	dst   unix.SockaddrInet4
	src   []unix.SockaddrInet4
	conns []scConn
	hs    []*hsState
	rbuf  []byte
	wbuf  [32]byte

	pending []int32 // descriptors with an hsState, for timeouts

	// dialing
	target    int // connections to have attempted, in all steps
	attempted int
	open      int
	stepOK    int
	stepFail  int
	stepErrs  map[string]int
	dialStart int64 // unix ns
	dialing   bool

	// the push window, ns since base (0: none)
	ws, we, grace int64
	hold          scaleHoldPart
	gapH, phaseH  *hdr.Histogram

	lost      map[string]int // connections the server dropped, by class
	closes    map[string]int // ends seen after "shutdown", by class
	Shutdown  bool
	unexpect  map[string]int // frames that are neither greeting nor push
	emitEvent func(scaleEvent)
}

// scaleWorkerMain is the hidden "__scale" subcommand: a client process of
// wsload scale. It reads a scaleSpec line, then scaleCmd lines, from stdin
// and writes scaleEvent lines to stdout; stdin's end ends it.
// WorkerMain is the scale client process ("wsload __scale"): it reads its
// spec and commands on stdin and writes events on stdout.
func WorkerMain() error {
	fleet.IgnoreInterrupts()
	cmds, spec, err := readScaleStdin()
	if err != nil {
		return err
	}
	emit := newLineEmitter(os.Stdout)
	w, err := newScaleWorker(spec, func(e scaleEvent) {
		e.Worker = spec.Index
		emit(e)
	})
	if err != nil {
		emit(scaleEvent{Type: "fatal", Worker: spec.Index, Err: err.Error()})
		return err
	}
	return w.run(cmds)
}

func newScaleWorker(spec scaleSpec, emit func(scaleEvent)) (*scaleWorker, error) {
	host, port, err := net.SplitHostPort(spec.Addr)
	if err != nil {
		return nil, err
	}
	w := &scaleWorker{spec: spec, base: time.Now(), iv: int64(spec.Interval), rbuf: make([]byte, 64<<10),
		stepErrs: map[string]int{}, lost: map[string]int{}, closes: map[string]int{}, unexpect: map[string]int{},
		emitEvent: emit}
	ip := net.ParseIP(host).To4()
	p, err := strconv.Atoi(port)
	if ip == nil || err != nil {
		return nil, fmt.Errorf("scale: %q is not an IPv4 host:port", spec.Addr)
	}
	w.dst.Port = p
	copy(w.dst.Addr[:], ip)
	for _, s := range spec.Src {
		sip := net.ParseIP(s).To4()
		if sip == nil {
			return nil, fmt.Errorf("scale: bad source address %q", s)
		}
		var sa unix.SockaddrInet4
		copy(sa.Addr[:], sip)
		w.src = append(w.src, sa)
	}
	var rl unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	size := int(min(rl.Cur, 1<<20)) + 1
	w.conns = make([]scConn, size)
	w.hs = make([]*hsState, size)
	w.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return w, nil
}

func (w *scaleWorker) now() int64 { return int64(time.Since(w.base)) }

// run is the loop: commands, dialing, timeouts, window ends, events.
func (w *scaleWorker) run(cmds <-chan scaleCmd) error {
	events := make([]unix.EpollEvent, 1024)
	var lastProgress, lastTimeouts, lastWake int64
	for {
		for drained := false; !drained; {
			select {
			case c, ok := <-cmds:
				if !ok || c.Cmd == "close" {
					w.CloseAll()
					w.emitEvent(scaleEvent{Type: "closed", Open: w.open, Lost: w.lost, Closes: w.closes, Unexpected: w.unexpect})
					return nil
				}
				w.command(c)
			default:
				drained = true
			}
		}
		for w.dialing && len(w.pending) < w.spec.DialConc && w.attempted < w.target {
			w.dialOne()
		}
		now := w.now()
		if w.we != 0 && lastWake >= w.ws && now < w.we {
			gap := now - lastWake
			w.hold.StallMaxNs = max(w.hold.StallMaxNs, gap)
			if gap > int64(50*time.Millisecond) {
				w.hold.StalledNs += gap
			}
		}
		lastWake = now
		if now-lastTimeouts > int64(50*time.Millisecond) {
			lastTimeouts = now
			w.expire(now)
		}
		if w.dialing {
			if w.attempted >= w.target && len(w.pending) == 0 {
				w.dialing = false
				w.emitEvent(scaleEvent{Type: "dialed", OK: w.stepOK, Fail: w.stepFail, Open: w.open, Errors: w.stepErrs,
					DialStart: w.dialStart, DialEnd: time.Now().UnixNano(), Lost: w.lost})
			} else if now-lastProgress > int64(200*time.Millisecond) {
				lastProgress = now
				w.emitEvent(scaleEvent{Type: "progress", OK: w.stepOK, Fail: w.stepFail})
			}
		}
		if w.we != 0 && now >= w.we+w.grace {
			w.endWindow()
		}
		n, err := unix.EpollWait(w.epfd, events, 10)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return os.NewSyscallError("epoll_wait", err)
		}
		for _, ev := range events[:n] {
			w.handle(int(ev.Fd), ev.Events)
		}
	}
}

func (w *scaleWorker) command(c scaleCmd) {
	switch c.Cmd {
	case "dial":
		w.target = c.N
		w.stepOK, w.stepFail, w.stepErrs = 0, 0, map[string]int{}
		w.dialStart = time.Now().UnixNano()
		w.dialing = true
	case "stop":
		// Dial no more; the step's counts stand and "dialed" follows once
		// the connects in flight have ended.
		w.target = w.attempted
	case "hold":
		w.ws = c.Start - w.base.UnixNano()
		w.we = c.End - w.base.UnixNano()
		w.grace = w.iv / 2
		w.hold = scaleHoldPart{Expected: int((w.we - w.ws) / w.iv)}
		w.gapH, w.phaseH = stats.GapHist(), stats.GapHist()
		for fd := range w.conns {
			c := &w.conns[fd]
			c.inWin = c.state == stOpen
			c.count = 0
			c.phase = 0 // the window's pushes set their own reference
			if c.inWin {
				w.hold.Conns++
			}
		}
	case "shutdown":
		// Acknowledged, so that the parent stops the servers only once
		// their Close frames will be counted as the shutdown's.
		w.Shutdown = true
		w.emitEvent(scaleEvent{Type: "shutdown", Open: w.open})
	}
}

// endWindow reports the window's pushes and clears it.
func (w *scaleWorker) endWindow() {
	h := &w.hold
	m := h.Expected
	for fd := range w.conns {
		c := &w.conns[fd]
		if !c.inWin {
			continue
		}
		c.inWin = false
		got := int(c.count)
		h.Received += int64(min(got, m))
		h.Extra += int64(max(got-m, 0))
		if got < m {
			h.Missed++
			h.Missing += int64(m - got)
		}
	}
	gh, err1 := w.gapH.Encode(hdr.V2CompressedEncodingCookieBase)
	ph, err2 := w.phaseH.Encode(hdr.V2CompressedEncodingCookieBase)
	if err := errors.Join(err1, err2); err != nil {
		w.emitEvent(scaleEvent{Type: "fatal", Err: "encode histogram: " + err.Error()})
	}
	h.GapHist, h.PhaseHist = string(gh), string(ph)
	part := *h
	w.ws, w.we = 0, 0
	w.emitEvent(scaleEvent{Type: "held", Hold: &part, Open: w.open, Lost: w.lost})
}

// dialOne opens one socket and starts its connect.
func (w *scaleWorker) dialOne() {
	g := w.spec.Offset + w.attempted
	w.attempted++
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		w.dialFailed(-1, "socket: "+errnoName(err))
		return
	}
	if fd >= len(w.conns) {
		unix.Close(fd)
		w.dialFailed(-1, "socket: descriptor beyond the table")
		return
	}
	if len(w.src) > 0 {
		// The kernel picks the port at connect time, per destination.
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		sa := w.src[g%len(w.src)]
		if err := unix.Bind(fd, &sa); err != nil {
			unix.Close(fd)
			w.dialFailed(-1, "bind: "+errnoName(err))
			return
		}
	}
	err = unix.Connect(fd, &w.dst)
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		w.dialFailed(-1, "connect: "+errnoName(err))
		return
	}
	hs := &hsState{start: w.now(), pos: len(w.pending)}
	w.hs[fd] = hs
	w.pending = append(w.pending, int32(fd))
	w.conns[fd] = scConn{state: stConnecting}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.fail(fd, "epoll_ctl: "+errnoName(err))
	}
}

// dialFailed counts a connection that failed before it was greeted.
func (w *scaleWorker) dialFailed(fd int, class string) {
	w.stepFail++
	w.stepErrs[class]++
}

// fail closes a connection that has not been greeted yet.
func (w *scaleWorker) fail(fd int, class string) {
	w.dropPending(fd)
	w.conns[fd] = scConn{}
	unix.Close(fd)
	w.dialFailed(fd, class)
}

func (w *scaleWorker) dropPending(fd int) {
	hs := w.hs[fd]
	if hs == nil {
		return
	}
	last := w.pending[len(w.pending)-1]
	w.pending[hs.pos] = last
	w.hs[last].pos = hs.pos
	w.pending = w.pending[:len(w.pending)-1]
	w.hs[fd] = nil
}

// expire fails connections still not greeted after the dial timeout.
func (w *scaleWorker) expire(now int64) {
	lim := int64(w.spec.DialTimeout)
	for i := 0; i < len(w.pending); {
		fd := int(w.pending[i])
		if now-w.hs[fd].start <= lim {
			i++
			continue
		}
		what := "timeout: connect"
		if w.conns[fd].state == stUpgrading {
			what = "timeout: no 101"
			if w.hs[fd].response {
				what = "timeout: no greeting"
			}
		}
		w.fail(fd, what) // moves the last pending entry to i
	}
}

// handle serves one readiness event.
func (w *scaleWorker) handle(fd int, ev uint32) {
	c := &w.conns[fd]
	switch c.state {
	case stFree:
		return
	case stConnecting:
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
			if err == nil {
				err = syscall.Errno(e)
			}
			w.fail(fd, "connect: "+errnoName(err))
			return
		}
		w.writeUpgrade(fd)
		return
	}
	t := w.now()
	n, err := unix.Read(fd, w.rbuf)
	switch {
	case n > 0:
		w.feed(fd, c, w.rbuf[:n], t)
	case err != nil && errors.Is(err, unix.EAGAIN):
	case err != nil:
		w.ended(fd, "read: "+errnoName(err))
	default:
		w.ended(fd, "EOF")
	}
}

// writeUpgrade sends the HTTP upgrade once connect has completed.
func (w *scaleWorker) writeUpgrade(fd int) {
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	sum := sha1.Sum([]byte(key + wsclient.GUID))
	w.hs[fd].accept = base64.StdEncoding.EncodeToString(sum[:])
	req := wsclient.UpgradeRequest(w.spec.Addr, key)
	if n, err := unix.Write(fd, []byte(req)); err != nil || n != len(req) {
		w.fail(fd, "write upgrade request: "+errnoName(err))
		return
	}
	w.conns[fd].state = stUpgrading
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		w.fail(fd, "epoll_ctl: "+errnoName(err))
	}
}

// ended handles the end of a connection's stream (EOF or an error).
func (w *scaleWorker) ended(fd int, class string) {
	c := &w.conns[fd]
	switch {
	case c.state == stUpgrading:
		w.fail(fd, "upgrade: "+class)
		return
	case w.Shutdown:
		if c.state != stClosing {
			w.closes["ended without Close: "+class]++
		}
	case c.state == stClosing:
		// Counted when the Close arrived.
	default:
		w.lost[class]++
	}
	w.drop(fd, c)
}

// drop closes an open connection and counts it out of the window.
func (w *scaleWorker) drop(fd int, c *scConn) {
	if c.inWin && w.we != 0 {
		w.hold.Lost++
		got := int(c.count)
		w.hold.Received += int64(min(got, w.hold.Expected))
		if got < w.hold.Expected {
			w.hold.Missed++
			w.hold.Missing += int64(w.hold.Expected - got)
		}
	}
	if c.state == stOpen || c.state == stClosing {
		w.open--
	}
	*c = scConn{}
	unix.Close(fd)
}

func (w *scaleWorker) CloseAll() {
	for fd := range w.conns {
		if w.conns[fd].state != stFree {
			unix.Close(fd)
			w.conns[fd] = scConn{}
		}
	}
	w.pending = w.pending[:0]
	clear(w.hs)
	w.open = 0
}

// feed parses the bytes read from fd: the rest of the HTTP response while
// upgrading, then frames.
func (w *scaleWorker) feed(fd int, c *scConn, b []byte, t int64) {
	if c.state == stUpgrading && !w.hs[fd].response {
		var ok bool
		if b, ok = w.response(fd, b); !ok {
			return
		}
	}
	for len(b) > 0 && c.state != stFree {
		if c.skip > 0 {
			k := min(int(c.skip), len(b))
			c.skip -= uint32(k)
			b = b[k:]
			continue
		}
		if c.plen > 0 {
			k := min(len(c.part)-int(c.plen), len(b))
			copy(c.part[c.plen:], b[:k])
			held := c.part[:int(c.plen)+k]
			total, hl := wsclient.FrameSize(held)
			switch {
			case total < 0: // header still incomplete
				c.plen += uint8(k)
				return
			case total <= len(held):
				used := total - int(c.plen)
				c.plen = 0
				w.frame(fd, c, held[:total], hl, t)
				b = b[used:]
			case total > len(c.part):
				w.oversized(c, held[0], total-len(held))
				c.plen = 0
				b = b[k:]
			default:
				c.plen += uint8(k)
				return
			}
			continue
		}
		total, hl := wsclient.FrameSize(b)
		switch {
		case total >= 0 && total <= len(b):
			w.frame(fd, c, b[:total], hl, t)
			b = b[total:]
		case total > len(c.part):
			w.oversized(c, b[0], total-len(b))
			return
		default:
			c.plen = uint8(copy(c.part[:], b))
			return
		}
	}
}

// response accumulates the HTTP response; it returns the bytes after it
// and true once the response is complete and correct.
func (w *scaleWorker) response(fd int, b []byte) ([]byte, bool) {
	hs := w.hs[fd]
	hs.buf = append(hs.buf, b...)
	end := bytes.Index(hs.buf, []byte("\r\n\r\n"))
	if end < 0 {
		if len(hs.buf) > 4096 {
			w.fail(fd, "upgrade: response over 4 KiB")
		}
		return nil, false
	}
	head, rest := string(hs.buf[:end]), hs.buf[end+4:]
	lines := strings.Split(head, "\r\n")
	if f := strings.SplitN(lines[0], " ", 3); len(f) < 2 || f[1] != "101" {
		w.fail(fd, "upgrade refused: "+wsclient.Truncate(lines[0], 40))
		return nil, false
	}
	accept := ""
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Sec-WebSocket-Accept") {
			accept = strings.TrimSpace(v)
		}
	}
	if accept != hs.accept {
		w.fail(fd, "upgrade: bad Sec-WebSocket-Accept")
		return nil, false
	}
	hs.buf, hs.response = nil, true
	return rest, true
}

// oversized counts a frame too long for the parser and skips its payload.
func (w *scaleWorker) oversized(c *scConn, b0 byte, left int) {
	w.unexpect[fmt.Sprintf("frame op %d over %d bytes", b0&0x0F, len(c.part))]++
	c.skip = uint32(max(left, 0))
}

// frame handles one whole frame f (header hl bytes) that arrived at t.
func (w *scaleWorker) frame(fd int, c *scConn, f []byte, hl int, t int64) {
	op := f[0] & 0x0F
	p := f[hl:]
	if f[1]&0x80 != 0 {
		wsclient.MaskBytes(p, binary.BigEndian.Uint32(f[hl-4:]), 0)
	}
	if c.state == stUpgrading {
		if op != wsclient.OpText || string(p) != wsclient.Greeting {
			w.fail(fd, fmt.Sprintf("greeting: got op %d %q", op, wsclient.Truncate(string(p), 20)))
			return
		}
		w.dropPending(fd)
		c.state = stOpen
		w.open++
		w.stepOK++
		return
	}
	switch op {
	case wsclient.OpText:
		if !looksLikeTime(p) {
			w.unexpect["text that is not a time push"]++
			return
		}
		w.push(c, t, p)
	case wsclient.OpClose:
		code := 0
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
		}
		class := "Close " + strconv.Itoa(code)
		if w.Shutdown {
			w.closes[class]++
		} else {
			w.lost[class]++
		}
		// [RFC6455 5.5.1]: the endpoint that receives a Close answers with
		// a Close, and the server then closes the TCP connection.
		w.writeFrame(fd, wsclient.OpClose, p[:min(len(p), 2)])
		c.state = stClosing
	case wsclient.OpPing:
		w.writeFrame(fd, wsclient.OpPong, p)
	case wsclient.OpPong:
	default:
		w.unexpect[fmt.Sprintf("frame op %d", op)]++
	}
}

// push records one time push that arrived at t.
func (w *scaleWorker) push(c *scConn, t int64, p []byte) {
	if !pushIsFresh(p, w.base.Add(time.Duration(t))) {
		w.hold.Stale++
	}
	iv := w.iv
	inWin := c.inWin && t >= w.ws && t < w.we+w.grace
	if inWin {
		// Phase lag: against the earliest phase this connection has shown
		// in the window; an earlier arrival moves the reference. Only the
		// window's pushes count: one more than half an interval late
		// during the ramp would wrap and skew the reference.
		if c.phase == 0 {
			c.phase = t
		}
		k := (t - c.phase + iv/2) / iv
		off := t - c.phase - k*iv
		if off < 0 {
			c.phase += off
			off = 0
		}
		w.phaseH.RecordValue(max(off/1000, 1))
		w.hold.PhaseMaxNs = max(w.hold.PhaseMaxNs, off)
	}
	if inWin {
		c.count++
		if t < w.we {
			w.hold.InWindow++
		}
		// Gaps within the window only: the last push before it may have
		// been late for a reason of its own (the ramp before the window).
		if c.last >= w.ws {
			dev := t - c.last - iv
			if dev < 0 {
				dev = -dev
			}
			w.gapH.RecordValue(max(dev/1000, 1))
			w.hold.GapMaxNs = max(w.hold.GapMaxNs, dev)
			w.hold.Gaps++
		}
	}
	c.last = t
}

// looksLikeTime checks the shape of "2006-01-02 15:04:05" without parsing.
func looksLikeTime(p []byte) bool {
	if len(p) != len(wsclient.TimeLayout) {
		return false
	}
	for i, ch := range p {
		switch wsclient.TimeLayout[i] {
		case '-', ' ', ':':
			if ch != wsclient.TimeLayout[i] {
				return false
			}
		default:
			if ch < '0' || ch > '9' {
				return false
			}
		}
	}
	return true
}

// pushIsFresh reports whether the pushed clock time (seconds of the day)
// is within 2 s of now: a push that waited in a queue shows an old time.
func pushIsFresh(p []byte, now time.Time) bool {
	d := func(i int) int { return int(p[i]-'0')*10 + int(p[i+1]-'0') }
	got := d(11)*3600 + d(14)*60 + d(17)
	h, m, s := now.Clock()
	diff := (h*3600 + m*60 + s - got + 86400) % 86400
	return diff <= 2 || diff >= 86400-2
}

// writeFrame sends a small masked control frame, best effort: a socket
// that does not take it whole is left to the server's close timeout.
func (w *scaleWorker) writeFrame(fd int, op byte, payload []byte) {
	n := min(len(payload), 125, len(w.wbuf)-6)
	b := w.wbuf[:6+n]
	b[0] = 0x80 | op
	b[1] = 0x80 | byte(n)
	key := mrand.Uint32()
	binary.BigEndian.PutUint32(b[2:], key)
	copy(b[6:], payload[:n])
	wsclient.MaskBytes(b[6:], key, 0)
	unix.Write(fd, b)
}

// errnoName is a short, address-free label for a syscall error.
func errnoName(err error) string {
	if err == nil {
		return "short write"
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		switch e {
		case unix.EADDRNOTAVAIL:
			return "EADDRNOTAVAIL (no free port for this source address)"
		case unix.EMFILE:
			return "EMFILE (open-file limit)"
		case unix.ENFILE:
			return "ENFILE (system file limit)"
		case unix.ECONNREFUSED:
			return "ECONNREFUSED"
		case unix.ECONNRESET:
			return "ECONNRESET"
		case unix.ETIMEDOUT:
			return "ETIMEDOUT"
		case unix.ENOBUFS, unix.ENOMEM:
			return e.Error() + " (kernel memory)"
		}
		return e.Error()
	}
	return err.Error()
}
