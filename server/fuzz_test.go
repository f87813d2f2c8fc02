//go:build linux

package server

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/wsmill/wsmill/poller"
)

// Fuzz targets for the read side: the frame parser (FuzzFrameReader) and
// the handshake (FuzzHandshake). Both drive a worker turn by hand on a real
// AF_UNIX socket pair, like the allocation rig, and feed every input several
// times with different segmentations: whole, in random chunks, one byte per
// turn, (handshake) one line per turn; the random chunks run with the
// kernel's smallest send buffer, so replies also go through the outbound
// queue and the EventWrite flush. Whatever the segmentation, what the server
// writes and how the connection ends must be the same. The frame target
// also compares the output with an independent model of RFC 6455
// (fzModelFrames), and the handshake target checks the frames that follow a
// 101 against the same model. After every turn the pooled buffers must be
// within their limits; after every input the server's counters, deadline
// lists and descriptors must be back where they were.
//
//	go test ./server -run '^$' -fuzz '^FuzzFrameReader$' -fuzztime 1m
//	go test ./server -run '^$' -fuzz '^FuzzHandshake$' -fuzztime 1m

// fzConfig is small enough that the 1009 paths are reachable with inputs of
// a few KiB, and the queue limit is at least the largest input (64 KiB), so
// an echo never overflows it whatever the kernel's socket buffers take.
func fzConfig() Config {
	return Config{
		PushInterval:     time.Hour,
		Workers:          1,
		MaxMessage:       4096,
		MaxOutbound:      64 << 10,
		HandshakeTimeout: time.Hour,
		CloseTimeout:     time.Hour,
		Origins:          []string{"https://ok.example"},
	}
}

const (
	fzMaxInput    = 64 << 10 // longer inputs are skipped
	fzMaxBytewise = 2 << 10  // inputs shorter than this are also fed one byte per turn
)

var fzGreeting = []byte("\x81\x0aHi Client!")

// fzRig is a server that was never started plus one worker driven by hand,
// shared by every input of one fuzz process (inputs run one at a time).
type fzRig struct {
	s    *Server
	w    *worker
	errs []error // Config.OnError reports (called on the test goroutine)
	rbuf []byte  // peer read scratch
	fds  int     // open descriptors after setup
	runs int
}

func newFzRig(tb testing.TB) *fzRig {
	r := &fzRig{rbuf: make([]byte, 64<<10)}
	cfg := fzConfig()
	cfg.OnError = func(err error) { r.errs = append(r.errs, err) }
	s, err := New(testConfig(cfg))
	if err != nil {
		tb.Fatal(err)
	}
	s.closeWorkers()                      // turns are driven by hand
	s.unsent = func(int) int { return 0 } // AF_UNIX pairs: see newAllocRig
	r.s, r.w = s, s.workers[0]
	tb.Cleanup(func() {
		r.drainHTTP()
	})
	r.fds = fzCountFDs()
	return r
}

func fzCountFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// drainHTTP closes every connection handed to net/http and reports how many.
func (r *fzRig) drainHTTP() int {
	n := 0
	for {
		select {
		case nc := <-r.s.httpLn.ch:
			nc.Close()
			n++
		default:
			return n
		}
	}
}

// begin and end bracket one fuzz input: nothing may leak from one to the
// next (descriptors, counters, deadline lists, hand-offs, errors).
func (r *fzRig) begin() {
	r.errs = r.errs[:0]
	r.w.gone = false
}

func (r *fzRig) end(t *testing.T) {
	t.Helper()
	s := r.s
	if n := r.drainHTTP(); n != 0 {
		t.Fatalf("%d stray connections handed to net/http", n)
	}
	if len(r.errs) > 0 {
		t.Fatalf("OnError: %v", r.errs)
	}
	if live, open := s.live.Load(), s.open.Load(); live != 0 || open != 0 {
		t.Fatalf("after closing every conn: live=%d open=%d; want 0, 0", live, open)
	}
	if s.hsList.head != nil || s.clList.head != nil {
		t.Fatalf("deadline lists not empty after closing every conn")
	}
	if r.runs++; r.runs%512 == 0 && r.fds > 0 {
		if n := fzCountFDs(); n > r.fds+32 {
			t.Fatalf("descriptor leak: %d open, %d after setup", n, r.fds)
		}
	}
}

// fzState is how a connection stands after a turn.
type fzState uint8

const (
	fzLive   fzState = iota // still ours (handshake, open or closing)
	fzClosed                // the turn returned false and we closed it, as serve does
	fzGone                  // handed off to net/http
)

// fzConn is one server connection and the peer's end of its socket pair.
type fzConn struct {
	r     *fzRig
	c     *conn // nil once closed or gone
	peer  int
	st    fzState
	out   []byte // everything the server wrote, in order
	turns int
}

// newConn makes a conn in phase ph. With smallBuf the server's send buffer
// is the kernel's minimum (a few KiB, counting per-write overhead), so its
// writes often meet EAGAIN and go through the outbound queue.
func (r *fzRig) newConn(t *testing.T, ph phase, smallBuf bool) *fzConn {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if smallBuf {
		if err := syscall.SetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1); err != nil {
			t.Fatal(err)
		}
	}
	s := r.s
	c := s.table.acquire(fds[0])
	if c == nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		t.Fatalf("descriptor %d beyond the table", fds[0])
	}
	s.live.Add(1)
	switch ph {
	case phaseHandshake: // as register does, without the poller
		c.phase = phaseHandshake
		s.hsList.push(c, s.now())
	case phaseOpen: // as an upgrade does, without the greeting
		c.phase = phaseOpen
		s.open.Add(1)
		s.wheel.add(c)
	}
	return &fzConn{r: r, c: c, peer: fds[1]}
}

// turn runs one worker turn as serve does: on false the conn is closed (or
// was handed off) and never touched again. Then it reads whatever the
// server wrote and checks the buffer bounds.
func (fc *fzConn) turn(t *testing.T, ev uint32) {
	t.Helper()
	c, w := fc.c, fc.r.w
	c.ev.Or(ev)
	c.sched.Store(schedRunning)
	ok := w.run(c)
	fc.turns++
	switch {
	case ok:
		c.sched.Store(schedIdle)
	case w.gone:
		w.gone = false // already released by the hand-off
		fc.st, fc.c = fzGone, nil
	default:
		fc.r.s.closeConn(c)
		fc.st, fc.c = fzClosed, nil
	}
	fc.collect(t)
	if fc.c != nil {
		fc.checkBounds(t)
	}
}

// settle gives the conn the turns the poller would: another read turn when
// the read budget ran out, a write turn while output is queued (the peer
// has read everything, so each flush makes progress).
func (fc *fzConn) settle(t *testing.T) {
	t.Helper()
	for i := 0; fc.c != nil; i++ {
		if i > 1<<16 {
			t.Fatalf("conn does not settle: readMore=%v pending=%d", fc.c.readMore, fc.pending())
		}
		switch {
		case fc.c.readMore:
			fc.turn(t, 0)
		case fc.pending() > 0:
			fc.turn(t, uint32(poller.EventWrite))
		default:
			return
		}
	}
}

func (fc *fzConn) pending() int {
	fc.c.mu.Lock()
	defer fc.c.mu.Unlock()
	return fc.c.pending()
}

// collect reads everything the server wrote so far.
func (fc *fzConn) collect(t *testing.T) {
	for {
		n, err := syscall.Read(fc.peer, fc.r.rbuf)
		if n > 0 {
			fc.out = append(fc.out, fc.r.rbuf[:n]...)
			continue
		}
		if err == syscall.EINTR {
			continue
		}
		return // EAGAIN, EOF, or ECONNRESET after the server closed
	}
}

// checkBounds: pooled buffers stay within their limits after every turn.
func (fc *fzConn) checkBounds(t *testing.T) {
	t.Helper()
	c, cfg := fc.c, fc.r.s.cfg
	msgCap := 1 << classOf(cfg.MaxMessage)
	if c.frame != nil && cap(*c.frame) > msgCap {
		t.Fatalf("frame buffer cap %d > %d", cap(*c.frame), msgCap)
	}
	if c.msg != nil && (cap(*c.msg) > msgCap || len(*c.msg) > cfg.MaxMessage) {
		t.Fatalf("message buffer len %d cap %d; limit %d (cap %d)", len(*c.msg), cap(*c.msg), cfg.MaxMessage, msgCap)
	}
	if c.msgLen < 0 || c.msgLen > int64(cfg.MaxMessage) {
		t.Fatalf("msgLen %d outside [0, %d]", c.msgLen, cfg.MaxMessage)
	}
	c.mu.Lock()
	outCap := 0
	if c.out != nil {
		outCap = cap(*c.out)
	}
	c.mu.Unlock()
	if lim := 1 << classOf(cfg.MaxOutbound+cfg.MaxMessage+14); outCap > lim {
		t.Fatalf("outbound queue cap %d > %d", outCap, lim)
	}
	if c.hs != nil && (len(*c.hs) > maxRequestSize || cap(*c.hs) > 1<<classOf(maxRequestSize)) {
		t.Fatalf("handshake buffer len %d cap %d; limit %d", len(*c.hs), cap(*c.hs), maxRequestSize)
	}
}

// write puts p in the socket for the server to read.
func (fc *fzConn) write(t *testing.T, p []byte) {
	t.Helper()
	for len(p) > 0 {
		n, err := syscall.Write(fc.peer, p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("peer write: %v (socket buffer full?)", err)
		}
		p = p[n:]
	}
}

// feed writes each chunk and gives the server one read turn per chunk. It
// stops when the conn is gone, or closing and stopAtClosing is set.
func (fc *fzConn) feed(t *testing.T, chunks [][]byte, stopAtClosing bool) int {
	t.Helper()
	fed := 0
	for _, ch := range chunks {
		if fc.c == nil || (stopAtClosing && fc.c.phase == phaseClosing) {
			break
		}
		fc.write(t, ch)
		fed += len(ch)
		fc.turn(t, uint32(poller.EventRead))
		fc.settle(t)
	}
	return fed
}

// fzEnd is how a connection ended up.
type fzEnd uint8

const (
	fzEndOpen      fzEnd = iota // open, waiting for more
	fzEndClosing                // our Close is out, waiting for the peer
	fzEndClosed                 // closed by the server
	fzEndHandshake              // still reading the HTTP request
	fzEndGone                   // handed off to net/http
)

func (e fzEnd) String() string {
	return [...]string{"open", "closing", "closed", "handshake", "handed-off"}[e]
}

// finish closes what is still ours and returns the outcome.
func (fc *fzConn) finish() fzOutcome {
	o := fzOutcome{out: fc.out}
	switch {
	case fc.st == fzGone:
		o.end = fzEndGone
	case fc.c == nil:
		o.end = fzEndClosed
	default:
		switch fc.c.phase {
		case phaseHandshake:
			o.end = fzEndHandshake
		case phaseOpen:
			o.end = fzEndOpen
		case phaseClosing:
			o.end = fzEndClosing
		}
		fc.r.s.closeConn(fc.c)
		fc.c = nil
	}
	syscall.Close(fc.peer)
	return o
}

type fzOutcome struct {
	out []byte
	end fzEnd
}

func (o fzOutcome) equal(p fzOutcome) bool { return o.end == p.end && bytes.Equal(o.out, p.out) }

func (o fzOutcome) String() string {
	return fmt.Sprintf("%v, %d bytes out: %s", o.end, len(o.out), fzHex(o.out))
}

func fzHex(b []byte) string {
	const max = 200
	if len(b) > max {
		return fmt.Sprintf("%x... (%d bytes)", b[:max], len(b))
	}
	return fmt.Sprintf("%x", b)
}

// fzSplit is one segmentation of an input.
type fzSplit struct {
	name     string
	chunks   [][]byte
	smallBuf bool // run it with a minimal server send buffer
}

// fzSplits returns the segmentations of p: whole, random chunks (sizes
// from a PCG seeded by seed; with a minimal send buffer, so the outbound
// queue is used), and one byte per chunk when p is small.
func fzSplits(p []byte, seed uint64) []fzSplit {
	var whole [][]byte
	if len(p) > 0 {
		whole = [][]byte{p}
	}
	splits := []fzSplit{{"whole", whole, false}, {"chunks", fzRandomChunks(p, seed), true}}
	if len(p) < fzMaxBytewise {
		splits = append(splits, fzSplit{"bytes", fzChunks(p, 1), false})
	}
	return splits
}

func fzRandomChunks(p []byte, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out [][]byte
	for len(p) > 0 {
		var n int
		switch rng.IntN(4) {
		case 0:
			n = 1 + rng.IntN(4)
		case 1:
			n = 1 + rng.IntN(32)
		case 2:
			n = 1 + rng.IntN(1024)
		default:
			n = 1 + rng.IntN(len(p))
		}
		n = min(n, len(p))
		out = append(out, p[:n])
		p = p[n:]
	}
	return out
}

func fzChunks(p []byte, size int) [][]byte {
	var out [][]byte
	for len(p) > 0 {
		n := min(size, len(p))
		out = append(out, p[:n])
		p = p[n:]
	}
	return out
}

// ---------------------------------------------------------------------------
// FuzzFrameReader

// FuzzFrameReader feeds a client byte stream to an open connection. When
// seed&3 == 3 the server is also asked to go away (Close 1001, as Shutdown
// does) after the first K = (seed>>2) % (len+1) bytes, and the rest of the
// stream is fed to the closing connection: that exercises readClosing, the
// skipped payload and the kept partial header.
func FuzzFrameReader(f *testing.F) {
	for _, s := range fzFrameSeeds() {
		f.Add(s.in, s.seed)
	}
	r := newFzRig(f)
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		if len(in) > fzMaxInput {
			t.Skip("input too long")
		}
		r.frameInput(t, in, seed)
	})
}

// frameInput runs one FuzzFrameReader input.
func (r *fzRig) frameInput(t *testing.T, in []byte, seed uint64) {
	t.Helper()
	goAway := -1
	if seed&3 == 3 {
		goAway = int((seed >> 2) % uint64(len(in)+1))
	}
	cut := len(in)
	if goAway >= 0 {
		cut = goAway
	}
	wantOut, wantEnd := fzModelFrames(in, int64(r.s.cfg.MaxMessage), goAway)
	want := fzOutcome{out: wantOut, end: wantEnd}

	head, tail := fzSplits(in[:cut], seed), fzSplits(in[cut:], seed>>7)
	var first fzOutcome
	for i, sp := range head {
		tl := tail[min(i, len(tail)-1)] // the rest may be too long to go byte by byte
		r.begin()
		got := r.runFrames(t, sp.chunks, tl.chunks, goAway >= 0, sp.smallBuf)
		r.end(t)
		name := sp.name + "/" + tl.name
		if err := fzCheckServerFrames(got.out, r.s.cfg.MaxMessage); err != nil {
			t.Fatalf("%s: invalid server output: %v\ninput %x (seed %d)\ngot %v", name, err, in, seed, got)
		}
		if i == 0 {
			first = got
		} else if !got.equal(first) {
			t.Fatalf("outcome depends on segmentation\ninput %x (seed %d)\n%s: %v\n%s: %v",
				in, seed, head[0].name, first, name, got)
		}
		if !got.equal(want) {
			t.Fatalf("%s: server differs from the RFC 6455 model\ninput %x (seed %d, go-away at %d)\ngot  %v\nwant %v",
				name, in, seed, goAway, got, want)
		}
	}
}

// runFrames feeds head to a fresh open conn, then (goAway) asks it to go
// away and feeds tail to the closing conn.
func (r *fzRig) runFrames(t *testing.T, head, tail [][]byte, goAway, smallBuf bool) fzOutcome {
	t.Helper()
	fc := r.newConn(t, phaseOpen, smallBuf)
	fc.feed(t, head, true)
	if goAway && fc.c != nil && fc.c.phase == phaseOpen {
		fc.turn(t, evGoingAway)
		fc.settle(t)
		fc.feed(t, tail, false)
	}
	return fc.finish()
}

// The model: what an RFC 6455 server with these rules writes for a client
// byte stream, and how the connection ends. It shares no code with the
// server (only ws's opcode constants).
//
//   - Every frame from the client must be masked, have no RSV bits and no
//     reserved opcode; control frames are final and at most 125 bytes;
//     continuation only inside a fragmented message, data frames only
//     outside one; a 64-bit length has its top bit clear. Otherwise 1002.
//   - A message (all of its fragments) over maxMsg bytes: 1009, decided from
//     the header, before its payload.
//   - Text must be UTF-8; the server fails (1007) as soon as the bytes
//     received cannot begin valid UTF-8, even inside an incomplete frame.
//   - Text and binary messages are echoed as one unfragmented frame, pings
//     answered with pongs, pongs ignored.
//   - A Close is answered with its status code (empty if it had none) and
//     the server closes the connection; a Close with a 1-byte body or an
//     invalid code is a 1002, an invalid UTF-8 reason a 1007.
//   - After the server's own Close (a failure) nothing more is read.
//   - goAway >= 0: after the first goAway bytes, an open server sends Close
//     1001 and then skips every frame until the client's Close header (then
//     closes) or an unparsable header or a reserved opcode (then ignores
//     the rest).
func fzModelFrames(in []byte, maxMsg int64, goAway int) ([]byte, fzEnd) {
	var out []byte
	fail := func(code uint16) ([]byte, fzEnd) {
		return fzServerFrame(out, ws.OpClose, binary.BigEndian.AppendUint16(nil, code)), fzEndClosing
	}
	limit := len(in)
	if goAway >= 0 {
		limit = goAway
	}
	var (
		inMsg bool
		msgOp ws.OpCode
		msg   []byte
	)
	pos := 0
	for {
		data := in[pos:limit]
		h, hl, hst := fzParseClientHeader(data)
		if hst == fzHdrShort {
			break // wait for more (pos: start of a partial header, or limit)
		}
		if hst == fzHdrMSB {
			return fail(1002)
		}
		if code := fzModelCheck(h, inMsg, int64(len(msg)), maxMsg); code != 0 {
			return fail(code)
		}
		text := h.OpCode == ws.OpText || (h.OpCode == ws.OpContinuation && msgOp == ws.OpText)
		if int64(len(data)-hl) < h.Length {
			if text {
				part := fzUnmask(data[hl:], h.Mask)
				if h.OpCode == ws.OpContinuation {
					part = append(append([]byte(nil), msg...), part...)
				}
				if !fzUTF8Prefix(part) {
					return fail(1007)
				}
			}
			if goAway < 0 {
				return out, fzEndOpen
			}
			pos += hl + int(h.Length) // the rest of this frame is skipped
			break
		}
		payload := fzUnmask(data[hl:hl+int(h.Length)], h.Mask)
		pos += hl + int(h.Length)
		switch h.OpCode {
		case ws.OpText, ws.OpBinary:
			if !h.Fin {
				inMsg, msgOp, msg = true, h.OpCode, payload
				if text && !fzUTF8Prefix(msg) {
					return fail(1007)
				}
				continue
			}
			if text && !utf8.Valid(payload) {
				return fail(1007)
			}
			out = fzServerFrame(out, h.OpCode, payload)
		case ws.OpContinuation:
			msg = append(msg, payload...)
			if text && !fzUTF8Prefix(msg) {
				return fail(1007)
			}
			if h.Fin {
				if text && !utf8.Valid(msg) {
					return fail(1007)
				}
				out = fzServerFrame(out, msgOp, msg)
				inMsg, msgOp, msg = false, 0, nil
			}
		case ws.OpPing:
			out = fzServerFrame(out, ws.OpPong, payload)
		case ws.OpPong:
		case ws.OpClose:
			switch {
			case len(payload) == 0:
				return fzServerFrame(out, ws.OpClose, nil), fzEndClosed
			case len(payload) == 1:
				return fail(1002)
			case !fzPeerCloseCode(binary.BigEndian.Uint16(payload)):
				return fail(1002)
			case !utf8.Valid(payload[2:]):
				return fail(1007)
			}
			return fzServerFrame(out, ws.OpClose, payload[:2]), fzEndClosed
		}
	}
	if goAway < 0 {
		return out, fzEndOpen
	}
	out = fzServerFrame(out, ws.OpClose, []byte{0x03, 0xe9}) // 1001
	for pos < len(in) {
		h, hl, hst := fzParseClientHeader(in[pos:])
		switch {
		case hst == fzHdrShort:
			return out, fzEndClosing
		case hst == fzHdrMSB, fzReservedOp(h.OpCode):
			return out, fzEndClosing // lost the frame boundaries: ignore the rest
		case h.OpCode == ws.OpClose:
			return out, fzEndClosed
		case h.Length > int64(len(in)-pos-hl):
			return out, fzEndClosing
		}
		pos += hl + int(h.Length)
	}
	return out, fzEndClosing
}

func fzReservedOp(op ws.OpCode) bool { return (op >= 3 && op <= 7) || op >= 0xb }

func fzModelCheck(h ws.Header, inMsg bool, msgLen, maxMsg int64) uint16 {
	op := h.OpCode
	control := op >= 8
	switch {
	case fzReservedOp(op):
		return 1002
	case control && (h.Length > 125 || !h.Fin):
		return 1002
	case h.Rsv != 0, !h.Masked:
		return 1002
	case inMsg && (op == ws.OpText || op == ws.OpBinary):
		return 1002
	case !inMsg && op == ws.OpContinuation:
		return 1002
	case !control && h.Length > maxMsg-msgLen:
		return 1009
	}
	return 0
}

// fzPeerCloseCode: the codes a peer may send ([RFC6455 7.4], IANA registry).
func fzPeerCloseCode(c uint16) bool {
	return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999)
}

const (
	fzHdrOK = iota
	fzHdrShort
	fzHdrMSB
)

// fzParseClientHeader decodes a frame header (with its mask key): the
// header, its length in bytes, and whether it is complete.
func fzParseClientHeader(b []byte) (h ws.Header, n int, st int) {
	if len(b) < 2 {
		return h, 0, fzHdrShort
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = b[0] >> 4 & 7
	h.OpCode = ws.OpCode(b[0] & 0xf)
	h.Masked = b[1]&0x80 != 0
	l := b[1] & 0x7f
	n = 2
	switch l {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h.Masked {
		n += 4
	}
	if len(b) < n {
		return h, 0, fzHdrShort
	}
	switch l {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		v := binary.BigEndian.Uint64(b[2:])
		if v>>63 != 0 {
			return h, n, fzHdrMSB
		}
		h.Length = int64(v)
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		copy(h.Mask[:], b[n-4:n])
	}
	return h, n, fzHdrOK
}

func fzUnmask(p []byte, mask [4]byte) []byte {
	q := make([]byte, len(p))
	for i, b := range p {
		q[i] = b ^ mask[i&3]
	}
	return q
}

// fzServerFrame appends an unmasked final frame with the shortest length.
func fzServerFrame(out []byte, op ws.OpCode, payload []byte) []byte {
	out = append(out, 0x80|byte(op))
	switch n := len(payload); {
	case n <= 125:
		out = append(out, byte(n))
	case n <= 0xffff:
		out = binary.BigEndian.AppendUint16(append(out, 126), uint16(n))
	default:
		out = binary.BigEndian.AppendUint64(append(out, 127), uint64(n))
	}
	return append(out, payload...)
}

// fzUTF8Prefix reports whether p can begin a valid UTF-8 string: valid, or
// valid up to a rune that more bytes could complete.
func fzUTF8Prefix(p []byte) bool {
	for k := 1; k <= 3 && k <= len(p); k++ {
		if p[len(p)-k]&0xc0 == 0x80 {
			continue
		}
		tail := p[len(p)-k:]
		if utf8.FullRune(tail) {
			break // complete (or invalid): the plain check decides
		}
		if !utf8.Valid(p[:len(p)-k]) {
			return false
		}
		for _, second := range []byte{0x80, 0x90, 0xa0} {
			r := append([]byte(nil), tail...)
			if len(r) == 1 {
				r = append(r, second)
			}
			for !utf8.FullRune(r) {
				r = append(r, 0x80)
			}
			if utf8.Valid(r) {
				return true
			}
		}
		return false
	}
	return utf8.Valid(p)
}

// fzCheckServerFrames checks that out is a sequence of valid frames a server
// may send: final, unmasked, no RSV, shortest length, text/binary echo
// (text valid UTF-8, at most maxMsg), pong (at most 125), close (empty or a
// 2-byte code the server may send) and nothing after a Close.
func fzCheckServerFrames(out []byte, maxMsg int) error {
	closed := false
	for off := 0; off < len(out); {
		b := out[off:]
		if closed {
			return fmt.Errorf("frame after Close at offset %d", off)
		}
		if len(b) < 2 {
			return fmt.Errorf("truncated header at offset %d", off)
		}
		if b[0]&0xf0 != 0x80 {
			return fmt.Errorf("bad first byte %#x at offset %d (FIN clear or RSV set)", b[0], off)
		}
		if b[1]&0x80 != 0 {
			return fmt.Errorf("masked server frame at offset %d", off)
		}
		op := ws.OpCode(b[0] & 0xf)
		n, hl := uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return fmt.Errorf("truncated header at offset %d", off)
			}
			n, hl = uint64(binary.BigEndian.Uint16(b[2:])), 4
			if n < 126 {
				return fmt.Errorf("non-minimal 16-bit length %d at offset %d", n, off)
			}
		case 127:
			if len(b) < 10 {
				return fmt.Errorf("truncated header at offset %d", off)
			}
			n, hl = binary.BigEndian.Uint64(b[2:]), 10
			if n <= 0xffff {
				return fmt.Errorf("non-minimal 64-bit length %d at offset %d", n, off)
			}
		}
		if n > uint64(maxMsg) {
			return fmt.Errorf("frame of %d bytes > MaxMessage at offset %d", n, off)
		}
		if uint64(len(b)-hl) < n {
			return fmt.Errorf("truncated payload at offset %d: %d of %d bytes", off, len(b)-hl, n)
		}
		p := b[hl : hl+int(n)]
		switch op {
		case ws.OpText:
			if !utf8.Valid(p) {
				return fmt.Errorf("text echo with invalid UTF-8 at offset %d", off)
			}
		case ws.OpBinary:
		case ws.OpPong:
			if n > 125 {
				return fmt.Errorf("pong of %d bytes at offset %d", n, off)
			}
		case ws.OpClose:
			closed = true
			switch {
			case n == 0:
			case n != 2:
				return fmt.Errorf("server Close body of %d bytes at offset %d; want 0 or 2", n, off)
			case !fzPeerCloseCode(binary.BigEndian.Uint16(p)):
				return fmt.Errorf("server Close code %d at offset %d", binary.BigEndian.Uint16(p), off)
			}
		default:
			return fmt.Errorf("server frame with opcode %#x at offset %d", op, off)
		}
		off += hl + int(n)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Seeds

// fzFrame builds a client frame: b0 is FIN|RSV|opcode, the length is encoded
// with lenBytes (0: shortest, 2 or 8), masked with key unless unmasked.
func fzFrame(b0 byte, payload []byte, lenBytes int, unmasked bool) []byte {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	out := []byte{b0}
	mbit := byte(0x80)
	if unmasked {
		mbit = 0
	}
	n := len(payload)
	if lenBytes == 0 {
		switch {
		case n <= 125:
		case n <= 0xffff:
			lenBytes = 2
		default:
			lenBytes = 8
		}
	}
	switch lenBytes {
	case 2:
		out = binary.BigEndian.AppendUint16(append(out, mbit|126), uint16(n))
	case 8:
		out = binary.BigEndian.AppendUint64(append(out, mbit|127), uint64(n))
	default:
		out = append(out, mbit|byte(n))
	}
	if unmasked {
		return append(out, payload...)
	}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i&3])
	}
	return out
}

// fzHeader64 is a masked header declaring length n in 64 bits (no payload).
func fzHeader64(b0 byte, n uint64) []byte {
	out := binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, n)
	return append(out, 0x37, 0xfa, 0x21, 0x3d)
}

func fzCloseBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func fzCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

type fzSeed struct {
	in   []byte
	seed uint64
}

func fzFrameSeeds() []fzSeed {
	const fin, text, bin, cont, closeOp, ping, pong = 0x80, 0x1, 0x2, 0x0, 0x8, 0x9, 0xa
	fill := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = 'a' + byte(i%26)
		}
		return p
	}
	hello := fzFrame(fin|text, []byte("hello"), 0, false)
	frag := fzCat(
		fzFrame(text, []byte("Hel"), 0, false),
		fzFrame(fin|ping, []byte("p1"), 0, false),
		fzFrame(cont, []byte("lo, "), 0, false),
		fzFrame(fin|pong, nil, 0, false),
		fzFrame(fin|cont, []byte("world \xe2\x82\xac"), 0, false),
	)
	ins := [][]byte{
		nil,
		hello,
		fzFrame(fin|text, nil, 0, false),
		fzFrame(fin|bin, fill(200), 0, false),
		fzFrame(fin|bin, fill(4096), 0, false),
		fzFrame(fin|text, fill(1000), 8, false), // non-minimal 64-bit length
		fzFrame(fin|text, []byte("short"), 2, false), // non-minimal 16-bit length
		fzFrame(fin|bin, fill(4097), 0, false),       // 1009
		frag,                                         // fragments with control frames between
		fzCat(fzFrame(bin, fill(3000), 0, false), fzFrame(fin|cont, fill(1097), 0, false)), // 1009 on the second fragment
		fzCat(fzFrame(bin, fill(3000), 0, false), fzFrame(fin|cont, fill(1096), 0, false)), // exactly MaxMessage
		fzCat(fzFrame(text, []byte("\xe2"), 0, false), fzFrame(fin|cont, []byte("\x82\xac"), 0, false)),
		fzCat(fzFrame(text, []byte("\xe2"), 0, false), fzFrame(fin|cont, []byte("\x82"), 0, false)), // ends inside a rune
		fzFrame(fin|text, []byte("\xff"), 0, false),
		fzFrame(fin|text, []byte("ok \xed\xa0\x80"), 0, false),  // surrogate
		fzFrame(fin|text, []byte("\xf4\x90\x80\x80"), 0, false), // > U+10FFFF
		fzFrame(fin|text, []byte("\xe2\x82"), 0, false),         // truncated rune
		fzFrame(fin|closeOp, fzCloseBody(1000, "bye"), 0, false),
		fzFrame(fin|closeOp, nil, 0, false),
		fzFrame(fin|closeOp, []byte{0x03}, 0, false),
		fzFrame(fin|closeOp, fzCloseBody(1005, ""), 0, false),
		fzFrame(fin|closeOp, fzCloseBody(999, ""), 0, false),
		fzFrame(fin|closeOp, fzCloseBody(1016, ""), 0, false),
		fzFrame(fin|closeOp, fzCloseBody(3000, "x"), 0, false),
		fzFrame(fin|closeOp, fzCloseBody(4999, ""), 0, false),
		fzFrame(fin|closeOp, fzCloseBody(5000, ""), 0, false),
		fzFrame(fin|closeOp, fzCloseBody(1001, "\xc0\xaf"), 0, false),
		fzFrame(fin|closeOp, fill(126), 0, false), // control over 125
		fzFrame(ping, []byte("x"), 0, false),      // fragmented control
		fzFrame(fin|ping, fill(125), 0, false),
		fzHeader64(fin|bin, 1<<63|5),            // 64-bit length with the top bit set
		fzHeader64(fin|bin, 1<<63-1),            // huge declared length
		fzHeader64(fin|bin, 5000),               // oversize declared length
		fzFrame(fin|0x3, []byte("r"), 0, false), // reserved data opcode
		fzFrame(fin|0xb, nil, 0, false),         // reserved control opcode
		fzFrame(fin|0x40|text, []byte("rsv1"), 0, false),
		fzFrame(fin|0x10|bin, []byte("rsv3"), 0, false),
		fzFrame(fin|text, []byte("plain"), 0, true), // unmasked
		fzFrame(fin|cont, []byte("orphan"), 0, false),
		fzCat(fzFrame(text, []byte("a"), 0, false), fzFrame(fin|text, []byte("b"), 0, false)),
		fzCat(hello, fzFrame(fin|ping, []byte("p"), 0, false), fzFrame(fin|bin, fill(300), 0, false), hello),
		fzCat(hello, fzFrame(fin|closeOp, fzCloseBody(1000, ""), 0, false), hello),
		fzCat(hello, hello[:4]),                                   // partial header
		fzCat(hello, fzFrame(fin|bin, fill(300), 0, false)[:100]), // partial payload
		fzFrame(fin|text, fill(3000), 0, false)[:1500],
	}
	var seeds []fzSeed
	for i, in := range ins {
		seeds = append(seeds, fzSeed{in, uint64(i) * 4}) // no go-away
	}
	// Go away at various points (seed&3 == 3, K = (seed>>2) % (len+1)).
	for _, k := range []uint64{0, 3, 7, 11, 20, 40} {
		seeds = append(seeds,
			fzSeed{fzCat(frag, fzFrame(fin|closeOp, nil, 0, false)), k<<2 | 3},
			fzSeed{fzCat(hello, fzFrame(fin|bin, fill(30), 0, false), fzFrame(fin|0x3, nil, 0, false), hello), k<<2 | 3},
		)
	}
	return seeds
}

// ---------------------------------------------------------------------------
// FuzzHandshake

// FuzzHandshake feeds raw request bytes to a connection in the handshake
// phase and checks that the outcome (upgraded, rejected with a status,
// still waiting, handed off to net/http) and every byte written do not
// depend on how the bytes arrive, that the status is one the server may
// send, that a 101 is followed by the greeting and then by the frames the
// model expects for the bytes after the request, and that a hand-off
// replays every byte to net/http.
func FuzzHandshake(f *testing.F) {
	for _, s := range fzHandshakeSeeds() {
		f.Add(s.in, s.seed)
	}
	r := newFzRig(f)
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		if len(in) > fzMaxInput {
			t.Skip("input too long")
		}
		r.handshakeInput(t, in, seed)
	})
}

// handshakeInput runs one FuzzHandshake input.
func (r *fzRig) handshakeInput(t *testing.T, in []byte, seed uint64) {
	t.Helper()
	splits := fzSplits(in, seed)
	splits = append(splits, fzSplit{"lines", fzSplitBeforeLF(in), false})
	var first fzOutcome
	for i, sp := range splits {
		r.begin()
		got := r.runHandshake(t, in, sp.chunks, sp.smallBuf)
		r.end(t)
		if i == 0 {
			first = got
			fzCheckHandshake(t, r, in, seed, got)
		} else if !got.equal(first) {
			t.Fatalf("outcome depends on segmentation\ninput %q (seed %d)\n%s: %v\n%s: %v",
				in, seed, splits[0].name, first, sp.name, got)
		}
	}
}

// fzSplitBeforeLF cuts before every LF, so the server sees each line's CR
// before its LF.
func fzSplitBeforeLF(p []byte) [][]byte {
	var out [][]byte
	for len(p) > 0 {
		i := bytes.IndexByte(p[1:], '\n')
		if i < 0 {
			return append(out, p)
		}
		out = append(out, p[:i+1])
		p = p[i+1:]
	}
	return out
}

func (r *fzRig) runHandshake(t *testing.T, in []byte, chunks [][]byte, smallBuf bool) fzOutcome {
	t.Helper()
	fc := r.newConn(t, phaseHandshake, smallBuf)
	fed := fc.feed(t, chunks, true)
	if fc.st == fzGone {
		// net/http must see the whole request: the bytes the worker had
		// read, replayed, then the rest from the socket.
		fc.write(t, in[fed:])
		var nc net.Conn
		select {
		case nc = <-r.s.httpLn.ch:
		default:
			t.Fatalf("handed off but nothing delivered to net/http (errors: %v)\ninput %q", r.errs, in)
		}
		got := make([]byte, 0, len(in))
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		for len(got) < len(in) {
			n, err := nc.Read(r.rbuf[:min(len(r.rbuf), len(in)-len(got))])
			got = append(got, r.rbuf[:n]...)
			if err != nil {
				break
			}
		}
		nc.Close()
		if !bytes.Equal(got, in) {
			t.Fatalf("net/http reads %q; want the whole input %q", got, in)
		}
	}
	return fc.finish()
}

var fzStatuses = map[int]bool{101: true, 400: true, 403: true, 405: true, 414: true, 426: true, 431: true, 503: true, 505: true}

// fzCheckHandshake checks one outcome against the input.
func fzCheckHandshake(t *testing.T, r *fzRig, in []byte, seed uint64, o fzOutcome) {
	t.Helper()
	fatal := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\ninput %q (seed %d)\noutcome %v", fmt.Sprintf(format, args...), in, seed, o)
	}
	reqEnd := fzRequestEnd(in)
	switch {
	case o.end == fzEndGone:
		if len(o.out) != 0 {
			fatal("handed off after writing %q", o.out)
		}
		if reqEnd < 0 {
			fatal("handed off before the end of the request header")
		}
		return
	case o.end == fzEndHandshake:
		if len(o.out) != 0 {
			fatal("still in the handshake after writing %q", o.out)
		}
		if reqEnd >= 0 || len(in) >= maxRequestSize {
			fatal("still waiting for a request header that is complete or too large")
		}
		return
	case len(o.out) == 0:
		// gobwas/ws answers nothing when it cannot parse the request line
		// (httpParseRequestLine fails, e.g. "GET /ws http/1.1"): the server
		// half-closes without a status line. Tolerated here, although
		// [RFC6455 4.2.1] asks for an HTTP error such as 400; make this a
		// failure once the server answers it itself.
		if o.end != fzEndClosing {
			fatal("no response, conn %v", o.end)
		}
		return
	}
	line, _, ok := bytes.Cut(o.out, []byte("\r\n"))
	if !ok || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) || len(line) < 12 {
		fatal("response does not start with a status line")
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil || !fzStatuses[status] {
		fatal("status %q is not one the server may send", line[9:12])
	}
	hdrLen := bytes.Index(o.out, []byte("\r\n\r\n"))
	if hdrLen < 0 {
		fatal("response header not terminated")
	}
	hdrLen += 4
	if status != 101 {
		if o.end != fzEndClosing {
			fatal("rejected with %d but conn %v; want closing", status, o.end)
		}
		if cl := fzContentLength(o.out[:hdrLen]); cl >= 0 && cl != len(o.out)-hdrLen {
			fatal("response body of %d bytes; Content-Length %d", len(o.out)-hdrLen, cl)
		}
		return
	}
	if reqEnd < 0 {
		fatal("upgraded before the end of the request header")
	}
	// The key the Upgrader took is the last Sec-WebSocket-Key header
	// (name trimmed, ASCII case ignored); it must be base64 of 16 bytes
	// ([RFC6455 4.2.1]), and the accept value derived from it.
	key := fzRequestKey(in[:reqEnd])
	if k, err := base64.StdEncoding.Strict().DecodeString(key); err != nil || len(k) != 16 {
		fatal("upgraded with Sec-WebSocket-Key %q, which is not base64 of 16 bytes", key)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	accept := "\r\nSec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
	if !strings.Contains(string(o.out[:hdrLen]), accept) {
		fatal("101 without %q", strings.TrimSpace(accept))
	}
	rest := o.out[hdrLen:]
	if !bytes.HasPrefix(rest, fzGreeting) {
		fatal("101 not followed by the greeting")
	}
	rest = rest[len(fzGreeting):]
	wantOut, wantEnd := fzModelFrames(in[reqEnd:], int64(r.s.cfg.MaxMessage), -1)
	if !bytes.Equal(rest, wantOut) || o.end != wantEnd {
		fatal("after the greeting: got %v %s; the model wants %v %s", o.end, fzHex(rest), wantEnd, fzHex(wantOut))
	}
}

// fzRequestEnd returns the end of the request header (just past the first
// empty line; lines end in LF or CRLF), or -1. [RFC9112 2.2]: one empty line
// before the request line is ignored.
func fzRequestEnd(in []byte) int {
	pos := 0
	for {
		i := bytes.IndexByte(in[pos:], '\n')
		if i < 0 {
			return -1
		}
		line := bytes.TrimSuffix(in[pos:pos+i], []byte("\r"))
		start := pos
		pos += i + 1
		if len(line) == 0 && start > 0 {
			return pos
		}
	}
}

// fzRequestKey returns the value of the last header line whose name, with
// spaces and tabs trimmed, is Sec-WebSocket-Key (ASCII case ignored).
func fzRequestKey(req []byte) string {
	var key string
	lines := strings.Split(string(req), "\n")
	for _, l := range lines[1:] {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			break
		}
		name, value, ok := strings.Cut(l, ":")
		if ok && fzASCIIEqualFold(strings.Trim(name, " \t"), "Sec-WebSocket-Key") {
			key = strings.Trim(value, " \t")
		}
	}
	return key
}

func fzASCIIEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// fzContentLength returns the Content-Length of a response header, or -1.
func fzContentLength(hdr []byte) int {
	for _, l := range strings.Split(string(hdr), "\r\n") {
		name, value, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(name, "Content-Length") {
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func fzHandshakeSeeds() []fzSeed {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	req := func(line string, headers ...string) []byte {
		return []byte(line + "\r\n" + strings.Join(headers, "\r\n") + "\r\n\r\n")
	}
	std := []string{"Host: example.com", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"}
	with := func(drop string, extra ...string) []string {
		var h []string
		for _, l := range std {
			if drop == "" || !strings.HasPrefix(l, drop) {
				h = append(h, l)
			}
		}
		return append(h, extra...)
	}
	valid := req("GET /ws HTTP/1.1", std...)
	many := with("")
	for i := len(many); i <= maxHeaders; i++ {
		many = append(many, "X-Filler-"+strconv.Itoa(i)+": x")
	}
	long := strings.Repeat("a", maxLineSize+10)
	text := fzFrame(0x81, []byte("hello"), 0, false)
	ins := [][]byte{
		valid,
		req("GET /ws?x=1 HTTP/1.1", "host: example.com", "upgrade: WebSocket", "connection: keep-alive, upgrade",
			"sec-websocket-key: "+key, "sec-websocket-version: 13", "Origin: https://ok.example"),
		req("POST /ws HTTP/1.1", std...),
		req("GET /ws HTTP/1.0", std...),
		req("GET /ws HTTP/2.0", std...),
		req("GET /ws", std...), // no version: the Upgrader writes nothing
		req("GET /ws HTTP/1.1", with("Host")...),
		req("GET /ws HTTP/1.1", with("Upgrade", "Upgrade: h2c")...),
		req("GET /ws HTTP/1.1", with("Connection", "Connection: keep-alive")...),
		req("GET /ws HTTP/1.1", with("Sec-WebSocket-Key", "Sec-WebSocket-Key: short")...),
		req("GET /ws HTTP/1.1", with("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=!")...),
		req("GET /ws HTTP/1.1", with("Sec-WebSocket-Key")...),
		req("GET /ws HTTP/1.1", with("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")...),
		req("GET /ws HTTP/1.1", with("Sec-WebSocket-Version")...),
		req("GET /ws HTTP/1.1", with("", "Origin: https://evil.example")...),
		req("GET /ws HTTP/1.1", with("", "Malformed header line")...),
		req("GET /ws HTTP/1.1", with("", "X-Long: "+long)...),
		req("GET /ws?"+long+" HTTP/1.1", std...),
		req("GET /ws HTTP/1.1", many...),
		req("GET / HTTP/1.1", "Host: example.com"),
		req("GET /other HTTP/1.1", std...),
		fzCat(valid, text),
		fzCat(valid, text, fzFrame(0x88, fzCloseBody(1000, ""), 0, false), text),
		fzCat(valid, fzFrame(0x82, make([]byte, 5000), 0, false)),
		fzCat(valid, text[:3]),
		valid[:len(valid)-2], // incomplete: waiting
		[]byte("GET /ws HTTP/1.1\r\nHost: example.com\r\n"),
		[]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), // a TLS ClientHello
		[]byte("\r\n\r\n"),
		bytes.ReplaceAll(valid, []byte("\r\n"), []byte("\n")), // bare LF line ends
		fzCat([]byte("\r\n"), valid),                          // an empty line before the request line
		[]byte(long),
	}
	var seeds []fzSeed
	for i, in := range ins {
		seeds = append(seeds, fzSeed{in, uint64(i)})
	}
	return seeds
}
