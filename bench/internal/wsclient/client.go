package wsclient

// A minimal raw WebSocket client: just enough of RFC 6455 to drive the
// servers under test without a library in the way. Frames we send are masked
// (as a client must); frames we read may be masked or not, because rawecho
// sends our own masked bytes back.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA

	GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

	// maxFrame bounds what the reader accepts, so a confused stream cannot
	// make the client allocate gigabytes.
	MaxFrame = 16 << 20

	// greeting is what every server under test sends right after the upgrade.
	Greeting = "Hi Client!"
	// timeLayout is the layout of the pushed time frames.
	TimeLayout = "2006-01-02 15:04:05"
)

// errPeerClosed is returned by ReadMessage when the server sent a Close frame.
var ErrPeerClosed = errors.New("server sent Close")

// dialOptions say how to open one connection.
type Options struct {
	Addr    string        // host:port of the server
	Src     string        // source IP to bind, "" for the kernel's choice
	Timeout time.Duration // for the TCP connect and the HTTP upgrade together
	RcvBuf  int           // SO_RCVBUF to set before connect, 0 to leave it
	ReadBuf int           // bufio.Reader size
	Stamps  bool          // SO_TIMESTAMPNS: keep each read's kernel receive time (stamp.go)
	Deflate bool          // offer permessage-deflate without context takeover (deflate.go)
	Target  string        // request-target of the upgrade, "" for /ws (fanout rooms: /ws?room=r7)
}

// wsConn is one client connection. Writes are serialised by wmu so that a
// reader goroutine may answer pings while a writer goroutine sends data.
type Conn struct {
	NC net.Conn
	BR *bufio.Reader

	wmu  sync.Mutex
	wbuf []byte

	hdr  [14]byte // the frame header being read (an array on the stack would escape through io.ReadFull)
	rbuf []byte   // payload of the last frame read (reused)
	mbuf []byte   // reassembly of fragmented messages (reused)

	stamp *stampReader // with dialOptions.Stamps: under br

	z        *deflateState // with Options.Deflate; z.on once the server accepted
	lastWire int           // bytes on the wire of the last message read
}

// LastWire is the size on the wire (frame headers and payloads, as
// received) of the message ReadMessage has just returned.
func (c *Conn) LastWire() int { return c.lastWire }

// arrival is the kernel receive time (unix ns) of the message ReadMessage
// has just returned, or 0 without dialOptions.Stamps or a stamp.
func (c *Conn) Arrival() int64 {
	if c.stamp == nil {
		return 0
	}
	return c.stamp.last
}

// dialWS connects, upgrades at GET /ws and checks the server's accept key.
func Dial(ctx context.Context, o Options) (*Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.ReadBuf <= 0 {
		o.ReadBuf = 4096
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	d := net.Dialer{Control: SocketControl(o.Src != "", o.RcvBuf, o.Stamps)}
	if o.Src != "" {
		ip := net.ParseIP(o.Src)
		if ip == nil {
			return nil, fmt.Errorf("bad source address %q", o.Src)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	nc, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	c := &Conn{NC: nc}
	if o.Deflate {
		c.z = &deflateState{}
	}
	if o.Stamps {
		if c.stamp, err = newStampReader(nc); err != nil {
			nc.Close()
			return nil, fmt.Errorf("stamps: %w", err)
		}
		c.BR = bufio.NewReaderSize(c.stamp, o.ReadBuf)
	} else {
		c.BR = bufio.NewReaderSize(nc, o.ReadBuf)
	}
	target := o.Target
	if target == "" {
		target = "/ws"
	}
	if err := c.handshake(o.Addr, target); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// SocketControl sets options on the socket before bind and connect:
// IP_BIND_ADDRESS_NO_PORT lets the kernel pick the source port at connect
// time, so one source address is not limited to one ephemeral range for all
// destinations; SO_RCVBUF (when asked) makes a small receive window;
// SO_TIMESTAMPNS (when asked) has the kernel stamp every packet received.
func SocketControl(bound bool, rcvbuf int, stamps bool) func(network, address string, c syscall.RawConn) error {
	if !bound && rcvbuf <= 0 && !stamps {
		return nil
	}
	return func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if bound {
				const ipBindAddressNoPort = 24 // IP_BIND_ADDRESS_NO_PORT, Linux 4.2+
				// Best effort: an old kernel just binds the port early.
				_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			}
			if rcvbuf > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}
			if stamps && serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

func (c *Conn) handshake(addr, target string) error {
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := UpgradeRequestTarget(addr, target, key)
	if c.z != nil {
		req = upgradeRequestDeflate(addr, target, key)
	}
	if _, err := io.WriteString(c.NC, req); err != nil {
		return fmt.Errorf("write upgrade request: %w", err)
	}
	tp := textproto.NewReader(c.BR)
	status, err := tp.ReadLine()
	if err != nil {
		return fmt.Errorf("read upgrade response: %w", err)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return fmt.Errorf("read upgrade headers: %w", err)
	}
	parts := strings.SplitN(status, " ", 3)
	if len(parts) < 2 || parts[1] != "101" {
		return fmt.Errorf("upgrade refused: %q", status)
	}
	if !strings.EqualFold(hdr.Get("Upgrade"), "websocket") {
		return fmt.Errorf("upgrade response without Upgrade: websocket")
	}
	h := sha1.Sum([]byte(key + GUID))
	if want := base64.StdEncoding.EncodeToString(h[:]); hdr.Get("Sec-WebSocket-Accept") != want {
		return fmt.Errorf("bad Sec-WebSocket-Accept %q", hdr.Get("Sec-WebSocket-Accept"))
	}
	on, err := checkExtensions(hdr.Values("Sec-WebSocket-Extensions"), c.z != nil)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	if c.z != nil {
		c.z.on = on
	}
	return nil
}

// UpgradeRequest is the HTTP request that asks for the upgrade at GET /ws.
func UpgradeRequest(addr, key string) string { return UpgradeRequestTarget(addr, "/ws", key) }

// UpgradeRequestTarget asks for the upgrade at GET target ("/ws?room=r7").
func UpgradeRequestTarget(addr, target, key string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// Close closes the TCP connection without a closing handshake: the load
// generator measures servers, and an abrupt close is what they must survive.
func (c *Conn) Close() error { return c.NC.Close() }

// WriteFrame sends one final frame with a fresh random mask, never
// compressed (WriteMessage compresses).
func (c *Conn) WriteFrame(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.writeFrameLocked(0x80|op, payload)
	return err
}

// writeFrameLocked sends one frame with first byte b0 (FIN, RSV and
// opcode) and a fresh random mask, and returns its size. Caller holds wmu.
func (c *Conn) writeFrameLocked(b0 byte, payload []byte) (int, error) {
	n := len(payload)
	need := 14 + n
	if cap(c.wbuf) < need {
		c.wbuf = make([]byte, need)
	}
	b := c.wbuf[:need]
	b[0] = b0
	h := 2
	switch {
	case n < 126:
		b[1] = 0x80 | byte(n)
	case n <= 0xFFFF:
		b[1] = 0x80 | 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		h = 4
	default:
		b[1] = 0x80 | 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		h = 10
	}
	key := mrand.Uint32()
	binary.BigEndian.PutUint32(b[h:], key)
	h += 4
	copy(b[h:], payload)
	MaskBytes(b[h:h+n], key, 0)
	return c.NC.Write(b[:h+n])
}

// maskBytes XORs p with the 4-byte key (big-endian in key) starting at
// key position pos (0..3), eight bytes at a time where possible.
func MaskBytes(p []byte, key uint32, pos int) {
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], key)
	i := 0
	for ; i < len(p) && (pos+i)&3 != 0; i++ {
		p[i] ^= k[(pos+i)&3]
	}
	if len(p)-i >= 8 {
		// Here (pos+i)%4 == 0, so the key lines up with p[i:] as is.
		kk := binary.LittleEndian.Uint32(k[:])
		k64 := uint64(kk) | uint64(kk)<<32
		for ; len(p)-i >= 8; i += 8 {
			v := binary.LittleEndian.Uint64(p[i:])
			binary.LittleEndian.PutUint64(p[i:], v^k64)
		}
	}
	for ; i < len(p); i++ {
		p[i] ^= k[(pos+i)&3]
	}
}

// frame is one frame as read: the payload aliases the connection's buffer
// until the next read.
type Frame struct {
	Fin        bool
	Op         byte
	Compressed bool // RSV1: the first frame of a compressed message
	Payload    []byte
	Wire       int // the frame's size on the wire, header included
}

// readFrame reads one frame, masked or not, and unmasks it.
func (c *Conn) ReadFrame() (Frame, error) {
	hdr := &c.hdr
	if _, err := io.ReadFull(c.BR, hdr[:2]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: hdr[0]&0x80 != 0, Op: hdr[0] & 0x0F, Compressed: hdr[0]&rsv1 != 0}
	// [RFC6455 5.2]: a nonzero RSV bit that no negotiated extension
	// defines fails the connection; permessage-deflate defines RSV1.
	if rsv := hdr[0] & 0x70; rsv != 0 && (rsv != rsv1 || !c.Deflate()) {
		return Frame{}, fmt.Errorf("frame with RSV bits set (0x%02x)", hdr[0])
	}
	hl := 2
	masked := hdr[1]&0x80 != 0
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		if _, err := io.ReadFull(c.BR, hdr[2:4]); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		hl = 4
	case 127:
		if _, err := io.ReadFull(c.BR, hdr[2:10]); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(hdr[2:10])
		hl = 10
	}
	if n > MaxFrame {
		return Frame{}, fmt.Errorf("frame of %d bytes exceeds the client's limit", n)
	}
	var key uint32
	if masked {
		if _, err := io.ReadFull(c.BR, hdr[10:14]); err != nil {
			return Frame{}, err
		}
		key = binary.BigEndian.Uint32(hdr[10:14])
		hl += 4
	}
	f.Wire = hl + int(n)
	if cap(c.rbuf) < int(n) {
		c.rbuf = make([]byte, n)
	}
	f.Payload = c.rbuf[:n]
	if _, err := io.ReadFull(c.BR, f.Payload); err != nil {
		return Frame{}, err
	}
	if masked {
		MaskBytes(f.Payload, key, 0)
	}
	return f, nil
}

// ReadMessage returns the next data message (text or binary), reassembling
// fragments and inflating a compressed one. Pings are answered, pongs
// skipped; a Close frame ends the connection with errPeerClosed. The
// payload is valid until the next call; LastWire is its size on the wire.
func (c *Conn) ReadMessage() (op byte, payload []byte, err error) {
	fragmented, compressed := false, false
	wire := 0
	for {
		f, err := c.ReadFrame()
		if err != nil {
			return 0, nil, err
		}
		if f.Compressed && f.Op != OpText && f.Op != OpBinary {
			// [RFC7692 6]: RSV1 is set on the first frame of a message
			// only; on a control frame or a continuation it is an error.
			return 0, nil, fmt.Errorf("RSV1 on a frame of opcode 0x%x", f.Op)
		}
		switch f.Op {
		case OpPing:
			if err := c.WriteFrame(OpPong, f.Payload); err != nil {
				return 0, nil, err
			}
			continue
		case OpPong:
			continue
		case OpClose:
			code := 0
			if len(f.Payload) >= 2 {
				code = int(binary.BigEndian.Uint16(f.Payload))
			}
			return 0, nil, fmt.Errorf("%w (code %d)", ErrPeerClosed, code)
		case OpText, OpBinary:
			if fragmented {
				return 0, nil, errors.New("new data frame inside a fragmented message")
			}
			op, compressed, wire = f.Op, f.Compressed, f.Wire
			if f.Fin {
				return c.endMessage(op, f.Payload, compressed, wire)
			}
			fragmented = true
			c.mbuf = append(c.mbuf[:0], f.Payload...)
		case OpContinuation:
			if !fragmented {
				return 0, nil, errors.New("continuation frame without a start")
			}
			if len(c.mbuf)+len(f.Payload) > MaxFrame {
				return 0, nil, errors.New("fragmented message exceeds the client's limit")
			}
			c.mbuf = append(c.mbuf, f.Payload...)
			wire += f.Wire
			if f.Fin {
				return c.endMessage(op, c.mbuf, compressed, wire)
			}
		default:
			return 0, nil, fmt.Errorf("unknown opcode 0x%x", f.Op)
		}
	}
}

// endMessage returns a whole message, inflated when it was compressed.
func (c *Conn) endMessage(op byte, p []byte, compressed bool, wire int) (byte, []byte, error) {
	c.lastWire = wire
	if !compressed {
		return op, p, nil
	}
	q, err := c.z.inflate(p)
	if err != nil {
		return 0, nil, err
	}
	return op, q, nil
}

// expectGreeting reads the first message and checks it is the greeting.
func (c *Conn) ExpectGreeting(timeout time.Duration) error {
	c.NC.SetReadDeadline(time.Now().Add(timeout))
	defer c.NC.SetReadDeadline(time.Time{})
	op, p, err := c.ReadMessage()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if op != OpText || string(p) != Greeting {
		return fmt.Errorf("greeting: got op %d %q", op, Truncate(string(p), 40))
	}
	return nil
}

// isPush reports whether a message is a pushed time frame.
func IsPush(op byte, p []byte) bool {
	if op != OpText || len(p) != len(TimeLayout) {
		return false
	}
	_, err := time.Parse(TimeLayout, string(p))
	return err == nil
}

func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// errClass turns an error into a short label for counting failures.
func ErrClass(err error) string {
	if err == nil {
		return ""
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "address not available (ports exhausted?)"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, ErrPeerClosed):
		return "server sent Close"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	s := err.Error()
	if i := strings.Index(s, ": "); i > 0 && i < 40 {
		// Keep the step ("greeting", "upgrade refused") and drop addresses.
		if strings.HasPrefix(s, "upgrade refused") {
			return Truncate(s, 60)
		}
		return s[:i] + ": " + Truncate(lastColon(s), 40)
	}
	return Truncate(s, 60)
}

func lastColon(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// isClosedErr reports whether err means the peer is gone (as opposed to a
// timeout on our side).
func IsClosedErr(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}
