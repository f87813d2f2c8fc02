package server

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/klauspost/compress/flate"
)

// permessage-deflate ([RFC7692]), without context takeover in either
// direction: every message is compressed and decompressed on its own, so
// no connection keeps a deflate window, a compressor or a decompressor
// between messages (see "Compression" in doc.go). The costs are where the
// work is:
//
//   - inbound, one decompressor per worker (worker.zr), reset for each
//     compressed message; the inflated message lives in a held buffer
//     (held.go) charged to MaxBuffered and bounded by MaxMessage;
//   - outbound, klauspost/compress's stateless encoder, whose scratch
//     (tokens, bit writer) comes from its own pools for the call; our
//     output buffers come from deflaters, a sync.Pool;
//   - a prepared Frame is compressed once, the first time a deflate
//     connection needs it, and that form is shared (Frame.z).

// extensionName is the extension token of [RFC7692 7].
var extensionName = []byte("permessage-deflate")

// The answers the server gives. [RFC7692 7.1.1.1, 7.1.1.2]: a server may
// include server_no_context_takeover and client_no_context_takeover in its
// response whether or not the offer had them, and then neither side takes
// the LZ77 window over to the next message. server_max_window_bits=15 is
// echoed when the offer has it ([RFC7692 7.1.2.1]: the server accepts the
// parameter by including it with the same or a smaller value).
var (
	deflateAnswer     = deflateOption(false)
	deflateAnswerBits = deflateOption(true)
)

func deflateOption(bits bool) httphead.Option {
	o := httphead.Option{Name: extensionName}
	o.Parameters.Set([]byte("server_no_context_takeover"), nil)
	o.Parameters.Set([]byte("client_no_context_takeover"), nil)
	if bits {
		o.Parameters.Set([]byte("server_max_window_bits"), []byte("15"))
	}
	return o
}

// extensions is the Upgrader's ExtensionCustom (set only with
// Config.Deflate), called with the value of each Sec-WebSocket-Extensions
// header line. It accepts the first valid permessage-deflate offer, in the
// client's order of preference, and declines every other offer by leaving
// it out of the answer: [RFC7692 7.1] says a server MUST decline an offer
// with a parameter not defined for offers, with an invalid value, or with
// the same parameter twice. A header that does not parse fails the
// handshake with 400. It returns the answer in a slice of the worker's, so
// an upgrade that negotiates allocates nothing (the Upgrader's Negotiate
// would append a 450-byte Option to a new slice on every upgrade: garbage
// that made the heap, and RSS, grow by 280 B per connection opened).
func (w *worker) extensions(h []byte, _ []httphead.Option) ([]httphead.Option, bool) {
	o := &w.offer
	*o = deflateOffer{index: -1}
	ok := httphead.ScanOptions(h, func(i int, name, attr, val []byte) httphead.Control {
		if i != o.index {
			w.endOffer()
			*o = deflateOffer{index: i, ours: bytes.EqualFold(name, extensionName), ok: true}
		}
		if o.ours && attr != nil {
			o.param(attr, val)
		}
		return httphead.ControlContinue
	})
	w.endOffer()
	if !ok {
		return nil, false
	}
	if !w.deflateOK {
		return nil, true
	}
	return w.answer[:], true
}

// deflateOffer is the offer the scan is in (worker.offer).
type deflateOffer struct {
	index int   // the option's index in the header line; -1 before the first
	ours  bool  // it is permessage-deflate
	ok    bool  // no reason to decline it so far
	bits  bool  // it had server_max_window_bits (=15)
	seen  uint8 // parameters seen, one bit each
}

// param checks one parameter of a permessage-deflate offer.
func (o *deflateOffer) param(k, v []byte) {
	var bit uint8
	ok := true
	switch string(k) {
	case "server_no_context_takeover":
		bit, ok = 1, len(v) == 0
	case "client_no_context_takeover":
		bit, ok = 2, len(v) == 0
	case "server_max_window_bits":
		// [RFC7692 7.1.2.1]: the value is 8..15. The server does not
		// limit its window below 32 KiB, so it declines a smaller one ("a
		// server declines an extension negotiation offer with this
		// parameter if the server doesn't support it").
		bit, ok, o.bits = 4, windowBits(v) == 15, true
	case "client_max_window_bits":
		// [RFC7692 7.1.2.2]: no value, or 8..15. It tells what the
		// client's compressor can be limited to; the server may leave it
		// out of its answer, and does: its decompressor takes any window
		// up to 15 bits, which the client may then use. (Chromium offers
		// it without a value.)
		bit, ok = 8, len(v) == 0 || windowBits(v) != 0
	default:
		ok = false // not defined for use in an offer
	}
	if o.seen&bit != 0 {
		ok = false // the same parameter twice
	}
	o.seen |= bit
	o.ok = o.ok && ok
}

// endOffer decides the offer the scan has just finished.
func (w *worker) endOffer() {
	o := &w.offer
	if o.index < 0 || !o.ours || w.deflateOK {
		return
	}
	if !o.ok {
		w.st.deflateDeclined.Add(1)
		return
	}
	w.deflateOK = true
	w.answer[0] = deflateAnswer
	if o.bits {
		w.answer[0] = deflateAnswerBits
	}
}

// windowBits parses a max_window_bits value ([RFC7692 7.1.2]: a decimal
// integer 8..15 without leading zeros; httphead has removed the quotes of
// a quoted-string) and returns 0 when it is not one.
func windowBits(v []byte) int {
	switch {
	case len(v) == 1 && v[0] >= '8' && v[0] <= '9':
		return int(v[0] - '0')
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return 10 + int(v[1]-'0')
	}
	return 0
}

// deflateTail ends every compressed message fed to the decompressor.
// [RFC7692 7.2.2]: append 0x00 0x00 0xff 0xff to the payload before
// decompressing. The empty final stored block after it (0x01 0x00 0x00
// 0xff 0xff) makes a message that ends cleanly finish with io.EOF, so
// that a truncated or corrupt stream (io.ErrUnexpectedEOF, or a
// CorruptInputError) is told apart from a whole one.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// inflateSrc is what the worker's decompressor reads: the compressed
// payload, then deflateTail. It is an io.ByteReader, so flate does not
// wrap it in a bufio.Reader (an allocation per message).
type inflateSrc struct {
	p    []byte
	tail []byte
}

func (r *inflateSrc) Read(b []byte) (int, error) {
	if len(r.p) > 0 {
		n := copy(b, r.p)
		r.p = r.p[n:]
		return n, nil
	}
	if len(r.tail) == 0 {
		return 0, io.EOF
	}
	n := copy(b, r.tail)
	r.tail = r.tail[n:]
	return n, nil
}

func (r *inflateSrc) ReadByte() (byte, error) {
	if len(r.p) > 0 {
		b := r.p[0]
		r.p = r.p[1:]
		return b, nil
	}
	if len(r.tail) == 0 {
		return 0, io.EOF
	}
	b := r.tail[0]
	r.tail = r.tail[1:]
	return b, nil
}

// inflateResult is what inflating a message came to.
type inflateResult uint8

const (
	inflateOK      inflateResult = iota
	inflateTooBig                // more than MaxMessage bytes: 1009
	inflateInvalid               // not a valid DEFLATE stream: 1007
	inflateRefused               // MaxBuffered would be passed: 1013
)

// inflate decompresses one message's payload into a held buffer. The
// buffer grows with the output (from four times the input, at least
// doubling), never past MaxMessage bytes of room: when the output fills
// MaxMessage bytes, one more byte is asked for into a 1-byte scratch, and
// if there is one the message is too big. So a bomb costs at most
// MaxMessage bytes (in its size class) and the CPU to inflate that much.
// The caller drops the buffer (dropBuf) when it has delivered it.
func (w *worker) inflate(in []byte) (*[]byte, inflateResult) {
	s := w.s
	limit := s.cfg.MaxMessage
	w.zsrc = inflateSrc{p: in, tail: deflateTail}
	if w.zr == nil {
		w.zr = flate.NewReader(&w.zsrc)
	} else if err := w.zr.(flate.Resetter).Reset(&w.zsrc, nil); err != nil {
		return nil, inflateInvalid
	}
	p, ok := s.holdBuf(nil, min(max(4*len(in), 1<<minClassShift), limit))
	if !ok {
		return nil, inflateRefused
	}
	for {
		buf := *p
		if len(buf) == min(cap(buf), limit) {
			if len(buf) == limit {
				var one [1]byte
				n, err := io.ReadFull(w.zr, one[:])
				if n > 0 {
					s.dropBuf(p)
					return nil, inflateTooBig
				}
				if err == io.EOF {
					return p, inflateOK
				}
				s.dropBuf(p)
				return nil, inflateInvalid
			}
			q, ok := s.holdBuf(p, min(2*cap(buf), limit))
			if !ok {
				s.dropBuf(p)
				return nil, inflateRefused
			}
			p, buf = q, *q
		}
		n, err := w.zr.Read(buf[len(buf):min(cap(buf), limit)])
		*p = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return p, inflateOK
		case err != nil:
			s.dropBuf(p)
			return nil, inflateInvalid
		}
	}
}

// inflateDeliver inflates a compressed message and delivers it, or fails
// the connection with the code that says why (see inflateResult).
func (w *worker) inflateDeliver(c *conn, op ws.OpCode, compressed []byte) bool {
	p, r := w.inflate(compressed)
	switch r {
	case inflateTooBig:
		w.st.inflateTooBig.Add(1)
		return w.fail(c, ws.StatusMessageTooBig)
	case inflateInvalid:
		// RFC 7692 names no close code for a payload that does not
		// inflate: 6.2 and 7.2.2 only say how to decompress, 8 (security)
		// is about what compression reveals, and Autobahn's 12.x/13.x
		// cases send only valid streams (they expect the echo and a
		// 1000). The payload is data not consistent with the type of
		// its message, which is [RFC6455 7.4.1]'s 1007, Jetty's answer
		// (BadPayloadException). 1002 would blame the framing, which
		// was valid; gws sends 1011, gorilla hands the error to the
		// application and closes without a code.
		w.st.inflateInvalid.Add(1)
		return w.fail(c, ws.StatusInvalidFramePayloadData)
	case inflateRefused:
		return w.refuse(c)
	}
	w.st.deflateIn.Add(1)
	msg := *p
	if op == ws.OpText && !utf8.Valid(msg) {
		// [RFC7692 6.1]: after decompression the payload is subject to
		// the constraints of its type again.
		w.s.dropBuf(p)
		return w.fail(c, ws.StatusInvalidFramePayloadData)
	}
	ok := w.deliver(c, Opcode(op), msg)
	w.s.dropBuf(p)
	return ok
}

// deflater compresses outbound messages: a buffer the stateless encoder
// writes into, from a pool (any goroutine sends).
type deflater struct {
	out []byte
}

func (d *deflater) Write(p []byte) (int, error) {
	d.out = append(d.out, p...)
	return len(p), nil
}

// maxKeptDeflate is the largest output buffer a deflater keeps when it
// goes back to the pool; a bigger one (a rare large message) is dropped.
const maxKeptDeflate = 256 << 10

var deflaters = sync.Pool{New: func() any { return &deflater{out: make([]byte, 0, 4<<10)} }}

var errDeflateTail = errors.New("server: deflate output does not end with a sync flush")

// compress returns payload compressed as [RFC7692 7.2.1] says: DEFLATE
// blocks, the last of them an empty stored block (a sync flush) whose
// final 0x00 0x00 0xff 0xff is removed. The result lives in d.out.
func (d *deflater) compress(payload []byte) ([]byte, error) {
	d.out = d.out[:0]
	if err := flate.StatelessDeflate(d, payload, false, nil); err != nil {
		return nil, err
	}
	n := len(d.out)
	if n < 4 || !bytes.Equal(d.out[n-4:], deflateTail[:4]) {
		return nil, errDeflateTail
	}
	return d.out[:n-4], nil
}

func getDeflater() *deflater { return deflaters.Get().(*deflater) }

func putDeflater(d *deflater) {
	if cap(d.out) <= maxKeptDeflate {
		deflaters.Put(d)
	}
}

// sendDeflateLocked sends payload compressed when it is worth it (at least
// DeflateMin bytes, and smaller once compressed); otherwise plain. Caller
// holds c.mu and c negotiated deflate.
func (s *Server) sendDeflateLocked(c *conn, op ws.OpCode, payload []byte, p Policy) SendResult {
	var hb [ws.MaxHeaderSize]byte
	if len(payload) < s.cfg.DeflateMin {
		return s.sendLocked(c, putHeader(&hb, op, len(payload)), payload, p, len(payload), false)
	}
	d := getDeflater()
	z, err := d.compress(payload)
	if err != nil || len(z) >= len(payload) {
		putDeflater(d)
		return s.sendLocked(c, putHeader(&hb, op, len(payload)), payload, p, len(payload), false)
	}
	hdr := putHeader(&hb, op, len(z))
	hdr[0] |= rsv1
	r := s.sendLocked(c, hdr, z, p, len(payload), false)
	putDeflater(d)
	return r
}

// rsv1 is the Per-Message Compressed bit in a frame's first byte ([RFC7692
// 6]: set on the first frame of a compressed message).
const rsv1 = 0x40

// wire is the bytes of f that go to c: its compressed form when c
// negotiated deflate and f is at least DeflateMin bytes, the plain one
// otherwise. Caller holds c.mu (c.deflate).
func (s *Server) wire(c *conn, f *Frame) []byte {
	if !c.deflate || f.n < s.cfg.DeflateMin {
		return f.b
	}
	return f.deflated()
}

// deflated returns the compressed form of f, making it the first time: a
// prepared frame is compressed once, however many connections it goes to.
// Two goroutines that both find it missing both compress it and the first
// to store wins; the form is the same. A frame that does not shrink keeps
// its plain bytes as its "compressed" form, and so goes plain.
func (f *Frame) deflated() []byte {
	if z := f.z.Load(); z != nil {
		return *z
	}
	hl := len(f.b) - f.n
	payload := f.b[hl:]
	d := getDeflater()
	zp, err := d.compress(payload)
	b := f.b
	if err == nil && len(zp) < f.n {
		var hb [ws.MaxHeaderSize]byte
		hdr := putHeader(&hb, ws.OpCode(f.b[0]&0x0f), len(zp))
		hdr[0] |= rsv1
		b = make([]byte, len(hdr)+len(zp))
		copy(b, hdr)
		copy(b[len(hdr):], zp)
	}
	putDeflater(d)
	if !f.z.CompareAndSwap(nil, &b) {
		return *f.z.Load()
	}
	return b
}

// frameZ is the lazily made compressed form of a Frame (see deflated).
type frameZ = atomic.Pointer[[]byte]
