package server

// Tests that speak WebSocket to the server byte by byte over a plain
// net.Conn, so that every detail of the wire format (header encodings,
// masking, fragmentation, close codes, TCP shutdown) is visible and under
// the test's control. Every read has a deadline: no test can hang.

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

const (
	rawGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	rawKey  = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 section 1.3 sample nonce

	rawOpCont   byte = 0x0
	rawOpText   byte = 0x1
	rawOpBinary byte = 0x2
	rawOpClose  byte = 0x8
	rawOpPing   byte = 0x9
	rawOpPong   byte = 0xA

	rawTimeout = 3 * time.Second // default read deadline
)

// rawGreeting is the text frame the server sends right after the 101.
var rawGreeting = []byte("Hi Client!")

// rawConfig is the base test configuration: no time pushes during a test,
// quick close timeout.
func rawConfig() Config {
	return Config{
		PushInterval: time.Minute,
		CloseTimeout: 500 * time.Millisecond,
	}
}

// rawAccept computes Sec-WebSocket-Accept for key ([RFC6455 4.2.2]).
func rawAccept(key string) string {
	h := sha1.Sum([]byte(key + rawGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Header lines of a valid upgrade request.
const (
	rawHdrHost = "Host: 127.0.0.1"
	rawHdrUp   = "Upgrade: websocket"
	rawHdrConn = "Connection: Upgrade"
	rawHdrKey  = "Sec-WebSocket-Key: " + rawKey
	rawHdrVer  = "Sec-WebSocket-Version: 13"
)

// rawReq builds an HTTP request from its request line and header lines.
func rawReq(line string, headers ...string) string {
	var b strings.Builder
	b.WriteString(line)
	b.WriteString("\r\n")
	for _, h := range headers {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// rawUpgradeRequest is a complete, valid upgrade request for /ws.
func rawUpgradeRequest() string {
	return rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer)
}

// rawHeader encodes a frame header: first byte b0, payload length n in the
// minimal form, then the mask key when key is not nil. The mask bit follows
// key.
func rawHeader(b0 byte, n uint64, key []byte) []byte {
	var mbit byte
	if key != nil {
		mbit = 0x80
	}
	h := []byte{b0, 0}
	switch {
	case n <= 125:
		h[1] = mbit | byte(n)
	case n <= 0xFFFF:
		h[1] = mbit | 126
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h[1] = mbit | 127
		h = binary.BigEndian.AppendUint64(h, n)
	}
	return append(h, key...)
}

// rawMaskKey returns a random, non-zero masking key.
func rawMaskKey() []byte {
	k := make([]byte, 4)
	for {
		binary.BigEndian.PutUint32(k, rand.Uint32())
		if binary.BigEndian.Uint32(k) != 0 {
			return k
		}
	}
}

// rawFrame builds a client frame with opcode op; masked with a random key
// when mask is set (as a client must), unmasked otherwise.
func rawFrame(op byte, fin bool, payload []byte, mask bool) []byte {
	b0 := op & 0x0F
	if fin {
		b0 |= 0x80
	}
	return rawFrameB0(b0, payload, mask)
}

// rawFrameB0 builds a frame with an arbitrary first byte (FIN, RSV, opcode).
func rawFrameB0(b0 byte, payload []byte, mask bool) []byte {
	var key []byte
	if mask {
		key = rawMaskKey()
	}
	f := rawHeader(b0, uint64(len(payload)), key)
	off := len(f)
	f = append(f, payload...)
	if mask {
		for i := range payload {
			f[off+i] ^= key[i&3]
		}
	}
	return f
}

// rawCloseBody encodes a Close payload: status code then reason.
func rawCloseBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// rawConn is one raw client connection.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

// rawDial opens a TCP connection to addr; it is closed when the test ends.
func rawDial(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, rawTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true) // the default in Go; explicit because tests rely on it
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReaderSize(nc, 64<<10)}
}

// rawHandshake dials addr, upgrades, checks the 101 and the accept key, and
// reads the greeting frame.
func rawHandshake(t testing.TB, addr string) *rawConn {
	t.Helper()
	rc := rawDial(t, addr)
	rc.write([]byte(rawUpgradeRequest()))
	rc.expectUpgraded(rawKey)
	rc.expectGreeting()
	return rc
}

// write writes b in one Write call.
func (rc *rawConn) write(b []byte) {
	rc.t.Helper()
	rc.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.nc.Write(b); err != nil {
		rc.t.Fatalf("write %d bytes: %v", len(b), err)
	}
}

// writeChopped writes b in pieces of lo..hi bytes, pausing after each piece
// so that the pieces reach the server separately.
func (rc *rawConn) writeChopped(b []byte, lo, hi int, pause time.Duration) {
	rc.t.Helper()
	for len(b) > 0 {
		n := min(lo+rand.IntN(hi-lo+1), len(b))
		rc.write(b[:n])
		b = b[n:]
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

// rawResponse is the head of an HTTP response.
type rawResponse struct {
	line   string              // status line without CRLF
	status int                 // status code
	header map[string][]string // lower-cased names
}

func (r rawResponse) get(name string) string {
	if v := r.header[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// readResponse reads an HTTP status line and header (not the body).
func (rc *rawConn) readResponse(timeout time.Duration) (rawResponse, error) {
	rc.nc.SetReadDeadline(time.Now().Add(timeout))
	var r rawResponse
	line, err := rc.br.ReadString('\n')
	if err != nil {
		return r, fmt.Errorf("reading status line (got %q): %w", line, err)
	}
	r.line = strings.TrimRight(line, "\r\n")
	f := strings.Fields(r.line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/") {
		return r, fmt.Errorf("malformed status line %q", r.line)
	}
	if r.status, err = strconv.Atoi(f[1]); err != nil {
		return r, fmt.Errorf("malformed status line %q", r.line)
	}
	r.header = map[string][]string{}
	for {
		line, err := rc.br.ReadString('\n')
		if err != nil {
			return r, fmt.Errorf("reading header (got %q): %w", line, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return r, nil
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return r, fmt.Errorf("malformed header line %q", line)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		r.header[k] = append(r.header[k], strings.TrimSpace(v))
	}
}

// expectUpgraded reads the response and checks it is a 101 with the right
// Sec-WebSocket-Accept for key.
func (rc *rawConn) expectUpgraded(key string) rawResponse {
	rc.t.Helper()
	r, err := rc.readResponse(rawTimeout)
	if err != nil {
		rc.t.Fatalf("handshake response: %v", err)
	}
	if !strings.HasPrefix(r.line, "HTTP/1.1 101") {
		rc.t.Fatalf("status line: got %q; want HTTP/1.1 101 ...", r.line)
	}
	if got, want := r.get("Sec-WebSocket-Accept"), rawAccept(key); got != want {
		rc.t.Fatalf("Sec-WebSocket-Accept: got %q; want %q", got, want)
	}
	if got := strings.ToLower(r.get("Upgrade")); got != "websocket" {
		rc.t.Errorf("Upgrade header: got %q; want %q", got, "websocket")
	}
	if got := strings.ToLower(r.get("Connection")); !strings.Contains(got, "upgrade") {
		rc.t.Errorf("Connection header: got %q; want it to contain %q", got, "upgrade")
	}
	return r
}

func (rc *rawConn) expectGreeting() {
	rc.t.Helper()
	rc.expectFrame(rawOpText, rawGreeting)
}

// rawIn is one frame read from the server.
type rawIn struct {
	fin     bool
	rsv     byte
	op      byte
	masked  bool
	hdr     []byte // the header bytes exactly as received
	payload []byte
}

func (f rawIn) String() string {
	p := f.payload
	if len(p) > 40 {
		p = p[:40]
	}
	return fmt.Sprintf("{op=%#x fin=%v rsv=%d masked=%v len=%d payload[:%d]=%q}",
		f.op, f.fin, f.rsv, f.masked, len(f.payload), len(p), p)
}

// rawRead reads one server frame, failing after timeout.
func (rc *rawConn) rawRead(timeout time.Duration) (rawIn, error) {
	rc.nc.SetReadDeadline(time.Now().Add(timeout))
	var f rawIn
	h := make([]byte, 2, 14)
	if _, err := io.ReadFull(rc.br, h); err != nil {
		return f, err
	}
	f.fin = h[0]&0x80 != 0
	f.rsv = h[0] >> 4 & 7
	f.op = h[0] & 0x0F
	f.masked = h[1]&0x80 != 0
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		h = h[:4]
		if _, err := io.ReadFull(rc.br, h[2:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		h = h[:10]
		if _, err := io.ReadFull(rc.br, h[2:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(h[2:])
	}
	var key []byte
	if f.masked {
		k := len(h)
		h = h[:k+4]
		if _, err := io.ReadFull(rc.br, h[k:]); err != nil {
			return f, err
		}
		key = h[k:]
	}
	f.hdr = h
	if n > 64<<20 {
		return f, fmt.Errorf("frame length %d: implausible", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(rc.br, f.payload); err != nil {
		return f, fmt.Errorf("reading %d payload bytes: %w", n, err)
	}
	for i := range f.payload {
		if key != nil {
			f.payload[i] ^= key[i&3]
		}
	}
	return f, nil
}

// rawIsTimePush reports whether f is the server's time push: a final text
// frame whose 19-byte payload parses with TimeLayout.
func rawIsTimePush(f rawIn) bool {
	if f.op != rawOpText || !f.fin || len(f.payload) != len(TimeLayout) {
		return false
	}
	_, err := time.Parse(TimeLayout, string(f.payload))
	return err == nil
}

// next reads one frame with the default deadline, skipping time pushes
// (the first one may come at any moment after the upgrade, whatever the
// PushInterval), and checks what every server frame must satisfy
// (unmasked, RSV 0).
func (rc *rawConn) next() rawIn {
	rc.t.Helper()
	f, err := rc.rawRead(rawTimeout)
	for err == nil && rawIsTimePush(f) {
		f, err = rc.rawRead(rawTimeout)
	}
	if err != nil {
		rc.t.Fatalf("reading a frame: %v", err)
	}
	if f.masked {
		rc.t.Errorf("server frame %v is masked; want unmasked", f)
	}
	if f.rsv != 0 {
		rc.t.Errorf("server frame %v has RSV %d; want 0", f, f.rsv)
	}
	return f
}

// expectFrame reads one frame and checks it is a final frame op with payload.
func (rc *rawConn) expectFrame(op byte, payload []byte) rawIn {
	rc.t.Helper()
	f := rc.next()
	if f.op != op || !f.fin {
		rc.t.Fatalf("frame: got %v; want op=%#x fin=true", f, op)
	}
	if !bytes.Equal(f.payload, payload) {
		rc.t.Fatalf("payload of op %#x: got %d bytes %q; want %d bytes %q",
			op, len(f.payload), rawTrunc(f.payload), len(payload), rawTrunc(payload))
	}
	return f
}

// expectClose reads a frame, checks it is a Close with code (or with an
// empty body when code is 0), and then that the server closes the TCP
// connection (EOF) within the default timeout.
func (rc *rawConn) expectClose(code uint16) {
	rc.t.Helper()
	f := rc.next()
	if f.op != rawOpClose || !f.fin {
		rc.t.Fatalf("frame: got %v; want Close %d", f, code)
	}
	switch {
	case code == 0 && len(f.payload) != 0:
		rc.t.Errorf("Close body: got %q; want empty", f.payload)
	case code != 0 && len(f.payload) < 2:
		rc.t.Errorf("Close body: got %q; want code %d", f.payload, code)
	case code != 0:
		if got := binary.BigEndian.Uint16(f.payload); got != code {
			rc.t.Errorf("Close code: got %d (reason %q); want %d", got, f.payload[2:], code)
		}
		if !utf8.Valid(f.payload[2:]) {
			rc.t.Errorf("Close reason %q is not valid UTF-8", f.payload[2:])
		}
	}
	rc.expectEOF(rawTimeout)
}

// expectEOF checks that nothing more arrives and the server's FIN does,
// within d.
func (rc *rawConn) expectEOF(d time.Duration) {
	rc.t.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(d))
	var buf [512]byte
	n, err := io.ReadAtLeast(rc.br, buf[:], 1)
	if n > 0 {
		rc.t.Fatalf("after Close: got %d more bytes %q; want EOF", n, buf[:n])
	}
	if err != io.EOF {
		rc.t.Fatalf("after Close: got %v; want io.EOF within %v", err, d)
	}
}

// drainToEOF reads and discards until EOF or an error, within d. It returns
// the bytes read and the final error.
func (rc *rawConn) drainToEOF(d time.Duration) (int, error) {
	rc.nc.SetReadDeadline(time.Now().Add(d))
	n, err := io.Copy(io.Discard, rc.br)
	if err == nil {
		err = io.EOF
	}
	return int(n), err
}

// echo sends a masked final data frame and expects it echoed.
func (rc *rawConn) echo(op byte, payload []byte) {
	rc.t.Helper()
	rc.write(rawFrame(op, true, payload, true))
	rc.expectFrame(op, payload)
}

// rawTrunc shortens b for messages.
func rawTrunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// rawText returns valid UTF-8 of exactly n bytes mixing 1- to 4-byte runes.
func rawText(rng *rand.Rand, n int) []byte {
	runes := []rune{'a', 'Z', '0', ' ', 'é', 'ß', 'Ж', '世', '界', '€', '\uFFFD', '🌍', '😀', '\U0010FFFF'}
	b := make([]byte, 0, n)
	for {
		r := runes[rng.IntN(len(runes))]
		if len(b)+utf8.RuneLen(r) > n {
			break
		}
		b = utf8.AppendRune(b, r)
	}
	for len(b) < n {
		b = append(b, 'x')
	}
	return b
}

// rawBytes returns n random bytes.
func rawBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestHandshakeOneBytePerWrite(t *testing.T) {
	_, addr := startServer(t, rawConfig())
	rc := rawDial(t, addr)
	req := []byte(rawUpgradeRequest())
	for i := range req {
		rc.write(req[i : i+1])
		if i%2 == 0 {
			time.Sleep(time.Millisecond) // make the writes really arrive apart
		}
	}
	rc.expectUpgraded(rawKey)
	rc.expectGreeting()

	rc.echo(rawOpText, []byte("hello, byte by byte"))

	// A frame one byte per write too (header, mask key and payload split).
	msg := []byte("héllo wörld 世界")
	f := rawFrame(rawOpText, true, msg, true)
	for i := range f {
		rc.write(f[i : i+1])
		time.Sleep(time.Millisecond)
	}
	rc.expectFrame(rawOpText, msg)
}

func TestHandshakeWithFirstFrame(t *testing.T) {
	_, addr := startServer(t, rawConfig())
	for _, tc := range []struct {
		name string
		key  string
	}{
		{"sample key", rawKey},
		{"other key", "x3JJHMbDL1EzLkh9GBhXDw=="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := rawDial(t, addr)
			req := rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn,
				"Sec-WebSocket-Key: "+tc.key, rawHdrVer)
			var b []byte
			b = append(b, req...)
			b = append(b, rawFrame(rawOpText, true, []byte("first"), true)...)
			b = append(b, rawFrame(rawOpBinary, true, []byte{0, 1, 2, 0xFF}, true)...)
			b = append(b, rawFrame(rawOpPing, true, []byte("ping!"), true)...)
			b = append(b, rawFrame(rawOpText, false, []byte("frag-"), true)...)
			b = append(b, rawFrame(rawOpCont, true, []byte("mented"), true)...)
			b = append(b, rawFrame(rawOpText, true, []byte("last"), true)...)
			rc.write(b)

			rc.expectUpgraded(tc.key)
			rc.expectGreeting()
			rc.expectFrame(rawOpText, []byte("first"))
			rc.expectFrame(rawOpBinary, []byte{0, 1, 2, 0xFF})
			rc.expectFrame(rawOpPong, []byte("ping!"))
			rc.expectFrame(rawOpText, []byte("frag-mented"))
			rc.expectFrame(rawOpText, []byte("last"))
		})
	}

	// The request, then the first frame cut in the middle of its header: the
	// rest follows in a later write.
	t.Run("partial frame after request", func(t *testing.T) {
		rc := rawDial(t, addr)
		f := rawFrame(rawOpText, true, []byte("split header"), true)
		rc.write(append([]byte(rawUpgradeRequest()), f[:3]...))
		rc.expectUpgraded(rawKey)
		rc.expectGreeting()
		time.Sleep(20 * time.Millisecond)
		rc.write(f[3:])
		rc.expectFrame(rawOpText, []byte("split header"))
	})

	// A large first frame in the same write: the request and the start of
	// the frame fill the server's first read; the rest arrives later.
	t.Run("large first frame", func(t *testing.T) {
		rc := rawDial(t, addr)
		msg := rawBytes(rand.New(rand.NewPCG(1, 2)), 100_000)
		b := append([]byte(rawUpgradeRequest()), rawFrame(rawOpBinary, true, msg, true)...)
		rc.write(b)
		rc.expectUpgraded(rawKey)
		rc.expectGreeting()
		rc.expectFrame(rawOpBinary, msg)
	})
}

func TestFragmentedWithPingBetween(t *testing.T) {
	_, addr := startServer(t, rawConfig())
	rng := rand.New(rand.NewPCG(3, 4))

	text := []byte("Grüße, 世界! 🌍 — fragments")
	// Cut points inside multi-byte runes: the first fragment ends with the
	// lead byte of ü, the second ends inside 🌍.
	cut1 := bytes.Index(text, []byte("ü")) + 1
	cut2 := bytes.Index(text, []byte("🌍")) + 2
	bigText := rawText(rng, 100_000)
	bin := rawBytes(rng, 300)
	bigBin := rawBytes(rng, 100_000)

	type part struct{ p1, p2, p3 []byte }
	split := func(b []byte, i, j int) part { return part{b[:i], b[i:j], b[j:]} }
	cases := []struct {
		name string
		op   byte
		msg  []byte
		part part
	}{
		{"text", rawOpText, text, split(text, cut1, cut2)},
		{"binary", rawOpBinary, bin, split(bin, 100, 250)},
		{"text empty fragments", rawOpText, text, split(text, 0, len(text))},
		{"big text", rawOpText, bigText, split(bigText, 30_001, 80_003)},
		{"big binary", rawOpBinary, bigBin, split(bigBin, 65_536, 65_537)},
	}
	writeModes := []struct {
		name  string
		write func(rc *rawConn, frames [][]byte)
	}{
		{"one write", func(rc *rawConn, frames [][]byte) {
			rc.write(bytes.Join(frames, nil))
		}},
		{"write per frame", func(rc *rawConn, frames [][]byte) {
			for _, f := range frames {
				rc.write(f)
				time.Sleep(2 * time.Millisecond)
			}
		}},
		{"chopped 1-3 bytes", func(rc *rawConn, frames [][]byte) {
			for _, f := range frames {
				pause := time.Millisecond
				if len(f) > 1000 {
					pause = 0 // big frames: still chopped, just no pauses
				}
				rc.writeChopped(f, 1, 3, pause)
			}
		}},
	}
	for _, tc := range cases {
		for _, wm := range writeModes {
			if len(tc.msg) > 1000 && wm.name == "chopped 1-3 bytes" {
				continue // 100 kB in 2-byte writes is just slow
			}
			t.Run(tc.name+"/"+wm.name, func(t *testing.T) {
				rc := rawHandshake(t, addr)
				frames := [][]byte{
					rawFrame(tc.op, false, tc.part.p1, true),
					rawFrame(rawOpPing, true, []byte("p1"), true),
					rawFrame(rawOpCont, false, tc.part.p2, true),
					rawFrame(rawOpCont, true, tc.part.p3, true),
				}
				wm.write(rc, frames)
				rc.expectFrame(rawOpPong, []byte("p1"))
				rc.expectFrame(tc.op, tc.msg)
				// Nothing else was sent before: the next frame is the
				// answer to this ping.
				rc.write(rawFrame(rawOpPing, true, []byte("end"), true))
				rc.expectFrame(rawOpPong, []byte("end"))
				// The connection is still usable for a new message.
				rc.echo(rawOpText, []byte("after"))
			})
		}
	}
}

func TestEchoSizesRaw(t *testing.T) {
	_, addr := startServer(t, rawConfig())
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20}
	for _, op := range []byte{rawOpText, rawOpBinary} {
		name := map[byte]string{rawOpText: "text", rawOpBinary: "binary"}[op]
		rc := rawHandshake(t, addr) // one connection per opcode, all sizes in turn
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				rc.t = t
				var msg []byte
				if op == rawOpText {
					msg = rawText(rng, n)
				} else {
					msg = rawBytes(rng, n)
				}
				rc.write(rawFrame(op, true, msg, true))
				f := rc.expectFrame(op, msg)
				// The minimal length form [RFC6455 5.2], unmasked, FIN set.
				if want := rawHeader(0x80|op, uint64(n), nil); !bytes.Equal(f.hdr, want) {
					t.Errorf("header: got % x; want % x", f.hdr, want)
				}
			})
		}
	}

	// MaxMessage is inclusive: a message of exactly MaxMessage bytes, whole
	// or in fragments, is echoed.
	t.Run("max message boundary", func(t *testing.T) {
		cfg := rawConfig()
		cfg.MaxMessage = 1024
		_, addr := startServer(t, cfg)
		rc := rawHandshake(t, addr)
		msg := rawText(rng, 1024)
		rc.echo(rawOpText, msg)
		rc.write(rawFrame(rawOpBinary, false, msg[:512], true))
		rc.write(rawFrame(rawOpCont, true, msg[512:], true))
		rc.expectFrame(rawOpBinary, msg)
	})
}

func TestPingPong(t *testing.T) {
	_, addr := startServer(t, rawConfig())
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 125} {
		t.Run(fmt.Sprintf("payload %d", n), func(t *testing.T) {
			rc := rawHandshake(t, addr)
			p := rawBytes(rng, n)
			rc.write(rawFrame(rawOpPing, true, p, true))
			f := rc.expectFrame(rawOpPong, p)
			if want := rawHeader(0x80|rawOpPong, uint64(n), nil); !bytes.Equal(f.hdr, want) {
				t.Errorf("pong header: got % x; want % x", f.hdr, want)
			}
		})
	}
	t.Run("ten in a row", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		var b []byte
		for i := range 10 {
			b = append(b, rawFrame(rawOpPing, true, fmt.Appendf(nil, "ping-%d", i), true)...)
		}
		rc.write(b)
		for i := range 10 {
			rc.expectFrame(rawOpPong, fmt.Appendf(nil, "ping-%d", i))
		}
	})
	t.Run("ten in a row chopped", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		var b []byte
		for i := range 10 {
			b = append(b, rawFrame(rawOpPing, true, fmt.Appendf(nil, "ping-%d", i), true)...)
		}
		rc.writeChopped(b, 1, 7, 0)
		for i := range 10 {
			rc.expectFrame(rawOpPong, fmt.Appendf(nil, "ping-%d", i))
		}
	})
	t.Run("unsolicited pong", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		rc.write(rawFrame(rawOpPong, true, []byte("unasked"), true))
		rc.write(rawFrame(rawOpPong, true, nil, true))
		// The next frame must be the echo: nothing answered the pongs.
		rc.echo(rawOpText, []byte("still here"))
	})
}

func TestCloseHandshake(t *testing.T) {
	_, addr := startServer(t, rawConfig())
	cases := []struct {
		name string
		body []byte
		want uint16 // 0: empty Close body expected
	}{
		{"1000 with reason", rawCloseBody(1000, "bye"), 1000},
		{"1000 without reason", rawCloseBody(1000, ""), 1000},
		{"1001", rawCloseBody(1001, "going"), 1001},
		{"1011", rawCloseBody(1011, ""), 1011},
		{"3000", rawCloseBody(3000, "app"), 3000},
		{"4999", rawCloseBody(4999, "private"), 4999},
		{"utf8 reason", rawCloseBody(1000, "tschüß 世界"), 1000},
		{"123-byte reason", rawCloseBody(1000, strings.Repeat("r", 123)), 1000},
		{"empty body", nil, 0},
		{"code 1005", rawCloseBody(1005, ""), 1002},
		{"code 1006", rawCloseBody(1006, ""), 1002},
		{"code 1015", rawCloseBody(1015, ""), 1002},
		{"code 999", rawCloseBody(999, ""), 1002},
		{"code 0", rawCloseBody(0, ""), 1002},
		{"code 1016", rawCloseBody(1016, ""), 1002},
		{"code 2999", rawCloseBody(2999, ""), 1002},
		{"code 5000", rawCloseBody(5000, ""), 1002},
		{"1-byte body", []byte{0x03}, 1002},
		{"invalid utf8 reason", rawCloseBody(1000, "ok\xFFno"), 1007},
		{"surrogate in reason", rawCloseBody(1000, "\xED\xA0\x80"), 1007},
		{"truncated rune in reason", rawCloseBody(1000, "ab\xE4\xB8"), 1007},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := rawHandshake(t, addr)
			rc.write(rawFrame(rawOpClose, true, tc.body, true))
			rc.expectClose(tc.want)
		})
	}

	t.Run("frames after close are ignored", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		b := rawFrame(rawOpClose, true, rawCloseBody(1000, ""), true)
		b = append(b, rawFrame(rawOpText, true, []byte("late"), true)...)
		b = append(b, rawFrame(rawOpPing, true, []byte("late"), true)...)
		rc.write(b)
		rc.expectClose(1000)
	})

	t.Run("close inside fragmented message", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		rc.write(rawFrame(rawOpText, false, []byte("half"), true))
		rc.write(rawFrame(rawOpClose, true, rawCloseBody(1000, ""), true))
		rc.expectClose(1000)
	})

	t.Run("close chopped", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		rc.writeChopped(rawFrame(rawOpClose, true, rawCloseBody(1000, "slow"), true), 1, 2, time.Millisecond)
		rc.expectClose(1000)
	})
}

func TestProtocolErrors(t *testing.T) {
	cfg := rawConfig()
	cfg.MaxMessage = 1024
	_, addr := startServer(t, cfg)
	key := []byte{0x11, 0x22, 0x33, 0x44}

	// msb64 is a masked binary header declaring a 64-bit length with the
	// most significant bit set.
	msb64 := append([]byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 5}, key...)

	cases := []struct {
		name   string
		writes [][]byte // written one after another, each in one Write
		want   uint16
	}{
		{"unmasked text", [][]byte{rawFrame(rawOpText, true, []byte("hi"), false)}, 1002},
		{"unmasked ping", [][]byte{rawFrame(rawOpPing, true, []byte("hi"), false)}, 1002},
		{"RSV1", [][]byte{rawFrameB0(0x80|0x40|rawOpText, []byte("hi"), true)}, 1002},
		{"RSV2", [][]byte{rawFrameB0(0x80|0x20|rawOpBinary, []byte("hi"), true)}, 1002},
		{"RSV3", [][]byte{rawFrameB0(0x80|0x10|rawOpPing, []byte("hi"), true)}, 1002},
		{"opcode 3", [][]byte{rawFrame(0x3, true, []byte("hi"), true)}, 1002},
		{"opcode 7", [][]byte{rawFrame(0x7, true, nil, true)}, 1002},
		{"opcode 0xB", [][]byte{rawFrame(0xB, true, []byte("hi"), true)}, 1002},
		{"opcode 0xF", [][]byte{rawFrame(0xF, true, nil, true)}, 1002},
		{"ping 126 bytes", [][]byte{rawFrame(rawOpPing, true, make([]byte, 126), true)}, 1002},
		{"close 126 bytes", [][]byte{rawFrame(rawOpClose, true, rawCloseBody(1000, strings.Repeat("x", 124)), true)}, 1002},
		{"ping header only declaring 126", [][]byte{rawHeader(0x80|rawOpPing, 126, key)}, 1002},
		{"fragmented ping", [][]byte{rawFrame(rawOpPing, false, []byte("p"), true)}, 1002},
		{"fragmented pong", [][]byte{rawFrame(rawOpPong, false, []byte("p"), true)}, 1002},
		{"continuation without message", [][]byte{rawFrame(rawOpCont, true, []byte("c"), true)}, 1002},
		{"non-final continuation without message", [][]byte{rawFrame(rawOpCont, false, []byte("c"), true)}, 1002},
		{"text inside fragmented message", [][]byte{
			rawFrame(rawOpText, false, []byte("a"), true),
			rawFrame(rawOpText, true, []byte("b"), true),
		}, 1002},
		{"binary inside fragmented text", [][]byte{
			rawFrame(rawOpText, false, []byte("a"), true),
			rawFrame(rawOpBinary, false, []byte("b"), true),
		}, 1002},
		{"continuation after finished message", [][]byte{
			rawFrame(rawOpText, false, []byte("a"), true),
			rawFrame(rawOpCont, true, []byte("b"), true),
			rawFrame(rawOpCont, true, []byte("c"), true),
		}, 1002},
		{"64-bit length with MSB set", [][]byte{msb64}, 1002},
		{"invalid utf8 text", [][]byte{rawFrame(rawOpText, true, []byte("ok\xFFno"), true)}, 1007},
		{"surrogate in text", [][]byte{rawFrame(rawOpText, true, []byte("\xED\xA0\x80"), true)}, 1007},
		{"overlong in text", [][]byte{rawFrame(rawOpText, true, []byte("\xC0\x80"), true)}, 1007},
		{"above U+10FFFF in text", [][]byte{rawFrame(rawOpText, true, []byte("\xF4\x90\x80\x80"), true)}, 1007},
		{"text ends inside a rune", [][]byte{rawFrame(rawOpText, true, []byte("ab\xE2\x82"), true)}, 1007},
		{"invalid utf8 in first fragment", [][]byte{
			rawFrame(rawOpText, false, []byte("ab\xFF"), true),
		}, 1007},
		{"invalid utf8 across fragments, no final fragment", [][]byte{
			rawFrame(rawOpText, false, []byte("abc\xE2"), true), // valid so far: a lead byte
			rawFrame(rawOpCont, false, []byte("\x28xyz"), true), // 0x28 cannot continue it
		}, 1007},
		{"invalid utf8 across three fragments, no final fragment", [][]byte{
			rawFrame(rawOpText, false, []byte("\xF0"), true),
			rawFrame(rawOpCont, false, []byte("\x9F"), true),
			rawFrame(rawOpCont, false, []byte("\x98\x41"), true),
		}, 1007},
		{"fragmented text ends inside a rune", [][]byte{
			rawFrame(rawOpText, false, []byte("a\xE2"), true),
			rawFrame(rawOpCont, true, []byte("\x82"), true),
		}, 1007},
		{"invalid utf8 in partial frame, rest never sent", [][]byte{
			rawHeader(0x80|rawOpText, 100, key),
			rawMasked([]byte("ab\xFF"), key),
		}, 1007},
		{"invalid utf8 in partial fragment, rest never sent", [][]byte{
			rawFrame(rawOpText, false, []byte("ab\xE2"), true),
			append(rawHeader(rawOpCont, 100, key), rawMasked([]byte("\x82\x28"), key)...),
		}, 1007},
		{"message over MaxMessage, header only", [][]byte{rawHeader(0x80|rawOpBinary, 2000, key)}, 1009},
		{"text over MaxMessage, header only", [][]byte{rawHeader(0x80|rawOpText, 1025, key)}, 1009},
		{"64-bit length over MaxMessage, header only", [][]byte{rawHeader(0x80|rawOpBinary, 1<<40, key)}, 1009},
		{"fragments over MaxMessage", [][]byte{
			rawFrame(rawOpText, false, bytes.Repeat([]byte("a"), 600), true),
			rawFrame(rawOpCont, false, bytes.Repeat([]byte("b"), 600), true),
		}, 1009},
		{"fragments over MaxMessage, second header only", [][]byte{
			rawFrame(rawOpBinary, false, make([]byte, 1000), true),
			rawHeader(rawOpCont, 25, key),
		}, 1009},
		{"fragments over MaxMessage by one", [][]byte{
			rawFrame(rawOpBinary, false, make([]byte, 1000), true),
			rawFrame(rawOpCont, false, make([]byte, 24), true),
			rawFrame(rawOpCont, true, make([]byte, 1), true),
		}, 1009},
	}
	// Cases whose frames produce an echo before the failing frame.
	echoFirst := map[string][]byte{
		"continuation after finished message": []byte("ab"),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := rawHandshake(t, addr)
			for _, w := range tc.writes {
				rc.write(w)
				time.Sleep(2 * time.Millisecond)
			}
			if echo, ok := echoFirst[tc.name]; ok {
				rc.expectFrame(rawOpText, echo)
			}
			rc.expectClose(tc.want)
		})
	}
}

// rawMasked returns p masked with key.
func rawMasked(p, key []byte) []byte {
	q := make([]byte, len(p))
	for i := range p {
		q[i] = p[i] ^ key[i&3]
	}
	return q
}

func TestHandshakeErrors(t *testing.T) {
	cfg := rawConfig()
	cfg.HandshakeTimeout = 3 * time.Second
	_, addr := startServer(t, cfg)
	cases := []struct {
		name  string
		req   string
		want  int
		check func(t *testing.T, r rawResponse)
	}{
		{"valid", rawUpgradeRequest(), 101, nil},
		{"POST", rawReq("POST /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer), 405,
			func(t *testing.T, r rawResponse) {
				// [RFC9110 15.5.6]: "The origin server MUST generate an
				// Allow header field in a 405 response".
				if got := r.get("Allow"); !strings.Contains(got, "GET") {
					t.Errorf("Allow header in 405: got %q; want one listing GET", got)
				}
			}},
		{"HTTP/1.0", rawReq("GET /ws HTTP/1.0", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer), 505, nil},
		{"missing Host", rawReq("GET /ws HTTP/1.1", rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer), 400, nil},
		{"Upgrade: foo", rawReq("GET /ws HTTP/1.1", rawHdrHost, "Upgrade: foo", rawHdrConn, rawHdrKey, rawHdrVer), 400, nil},
		{"missing Upgrade", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrConn, rawHdrKey, rawHdrVer), 400, nil},
		{"Upgrade: WebSocket", rawReq("GET /ws HTTP/1.1", rawHdrHost, "Upgrade: WebSocket", rawHdrConn, rawHdrKey, rawHdrVer), 101, nil},
		{"Connection: keep-alive, Upgrade", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, "Connection: keep-alive, Upgrade", rawHdrKey, rawHdrVer), 101, nil},
		{"Connection: close", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, "Connection: close", rawHdrKey, rawHdrVer), 400, nil},
		{"lower-case header names", rawReq("GET /ws HTTP/1.1", "host: x", "upgrade: websocket", "connection: upgrade", "sec-websocket-key: "+rawKey, "sec-websocket-version: 13"), 101, nil},
		{"query string", rawReq("GET /ws?a=b HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer), 101, nil},
		{"missing Sec-WebSocket-Key", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrVer), 400, nil},
		{"short Sec-WebSocket-Key", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, "Sec-WebSocket-Key: abc", rawHdrVer), 400, nil},
		// [RFC6455 4.2.1] item 5: the key is "a base64-encoded value that,
		// when decoded, is 16 bytes in length". These two are 24 characters
		// long but are not that.
		{"Sec-WebSocket-Key not base64", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!!!", rawHdrVer), 400, nil},
		{"Sec-WebSocket-Key decodes to 18 bytes", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA", rawHdrVer), 400, nil},
		{"missing Sec-WebSocket-Version", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey), 400, nil},
		{"Sec-WebSocket-Version: 8", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, "Sec-WebSocket-Version: 8"), 426,
			func(t *testing.T, r rawResponse) {
				// [RFC6455 4.4]: the 426 names the versions understood.
				if got := r.get("Sec-WebSocket-Version"); got != "13" {
					t.Errorf("Sec-WebSocket-Version in 426: got %q; want %q", got, "13")
				}
			}},
		{"header lines of 8 KiB", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer, "X-Big: "+strings.Repeat("a", 8<<10-7), "X-Big2: "+strings.Repeat("b", 8<<10-8)), 101, nil},
		{"header line over 8 KiB", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer, "X-Big: "+strings.Repeat("a", 8<<10)), 431, nil},
		{"request line over 8 KiB", rawReq("GET /ws?"+strings.Repeat("q", 8<<10)+" HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer), 414, nil},
		{"64 headers", rawReq("GET /ws HTTP/1.1", append([]string{rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer}, rawManyHeaders(59)...)...), 101, nil},
		{"65 headers", rawReq("GET /ws HTTP/1.1", append([]string{rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer}, rawManyHeaders(60)...)...), 431, nil},
		{"request over 32 KiB", rawReq("GET /ws HTTP/1.1", append([]string{rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer}, rawBigHeaders(5, 7<<10)...)...), 431, nil},
		{"permessage-deflate offered", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"), 101,
			func(t *testing.T, r rawResponse) {
				if v, ok := r.header["sec-websocket-extensions"]; ok {
					t.Errorf("Sec-WebSocket-Extensions in 101: got %q; want no such header", v)
				}
			}},
		{"subprotocol offered", rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer, "Sec-WebSocket-Protocol: chat"), 101,
			func(t *testing.T, r rawResponse) {
				if v, ok := r.header["sec-websocket-protocol"]; ok {
					t.Errorf("Sec-WebSocket-Protocol in 101: got %q; want no such header", v)
				}
			}},
		{"other path goes to the handler", rawReq("GET /nope HTTP/1.1", rawHdrHost), 404, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := rawDial(t, addr)
			rc.write([]byte(tc.req))
			r, err := rc.readResponse(rawTimeout)
			if err != nil {
				t.Fatalf("response: %v", err)
			}
			if r.status != tc.want {
				t.Fatalf("status: got %q; want %d", r.line, tc.want)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			if tc.want == 101 {
				if got, want := r.get("Sec-WebSocket-Accept"), rawAccept(strings.TrimSpace(rawReqKey(tc.req))); got != want {
					t.Errorf("Sec-WebSocket-Accept: got %q; want %q", got, want)
				}
				rc.expectGreeting()
				rc.echo(rawOpText, []byte("upgraded"))
				return
			}
			// A refused handshake ends the connection once the response is out.
			if n, err := rc.drainToEOF(rawTimeout); err != io.EOF {
				t.Errorf("after the %d response (%d body bytes): got %v; want io.EOF", r.status, n, err)
			}
		})
	}
}

// rawReqKey extracts the Sec-WebSocket-Key value from a request.
func rawReqKey(req string) string {
	for _, line := range strings.Split(req, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, "Sec-WebSocket-Key") {
			return v
		}
	}
	return ""
}

func TestMaxConns(t *testing.T) {
	cfg := rawConfig()
	cfg.MaxConns = 2
	s, addr := startServer(t, cfg)

	a := rawHandshake(t, addr)
	b := rawHandshake(t, addr)
	waitFor(t, 2*time.Second, "Stats().Open == 2", func() bool { return s.Stats().Open == 2 })
	a.echo(rawOpText, []byte("a1"))
	b.echo(rawOpText, []byte("b1"))

	// The third is refused.
	rejected := s.Stats().Rejected
	c := rawDial(t, addr)
	c.write([]byte(rawUpgradeRequest()))
	r, err := c.readResponse(rawTimeout)
	if err != nil {
		t.Fatalf("third client: %v", err)
	}
	if !strings.HasPrefix(r.line, "HTTP/1.1 503") {
		t.Fatalf("third client status: got %q; want HTTP/1.1 503 ...", r.line)
	}
	if _, err := c.drainToEOF(rawTimeout); err != io.EOF {
		t.Errorf("third client after 503: got %v; want io.EOF", err)
	}
	if got, want := s.Stats().Rejected, rejected+1; got != want {
		t.Errorf("Stats().Rejected: got %d; want %d", got, want)
	}
	if got := s.Stats().Open; got != 2 {
		t.Errorf("Stats().Open after the refusal: got %d; want 2", got)
	}
	a.echo(rawOpBinary, []byte("a2"))
	b.echo(rawOpBinary, []byte("b2"))

	// a leaves: a slot frees up.
	a.write(rawFrame(rawOpClose, true, rawCloseBody(1000, ""), true))
	a.expectClose(1000)
	a.nc.Close()
	waitFor(t, 3*time.Second, "Stats().Open == 1", func() bool { return s.Stats().Open == 1 })
	b.echo(rawOpText, []byte("b3"))

	d := rawHandshake(t, addr)
	d.echo(rawOpText, []byte("d1"))
	b.echo(rawOpText, []byte("b4"))
	if got := s.Stats().Open; got != 2 {
		t.Errorf("Stats().Open: got %d; want 2", got)
	}

	// A client that just drops its TCP connection frees its slot too.
	b.nc.Close()
	waitFor(t, 3*time.Second, "Stats().Open == 1 after a drop", func() bool { return s.Stats().Open == 1 })
	e := rawHandshake(t, addr)
	e.echo(rawOpText, []byte("e1"))
	d.echo(rawOpText, []byte("d2"))
}

func TestHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	cfg := rawConfig()
	cfg.HandshakeTimeout = timeout
	_, addr := startServer(t, cfg)

	// closedAfter reads until the server ends the connection and returns
	// how long that took from start, and what was read.
	closedAfter := func(t *testing.T, rc *rawConn, start time.Time) (time.Duration, []byte, error) {
		rc.nc.SetReadDeadline(time.Now().Add(rawTimeout))
		got, err := io.ReadAll(rc.br)
		return time.Since(start), got, err
	}
	checkClosed := func(t *testing.T, d time.Duration, got []byte, err error) {
		t.Helper()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("connection still open after %v; want it closed after the %v handshake timeout", d, timeout)
		case err != nil && !errors.Is(err, syscall.ECONNRESET):
			t.Fatalf("read: got %v; want io.EOF", err)
		}
		if bytes.HasPrefix(got, []byte("HTTP/1.1 101")) {
			t.Fatalf("got an upgrade %q; want none", got)
		}
		if d < timeout-50*time.Millisecond || d > 1500*time.Millisecond {
			t.Errorf("closed after %v; want between %v and 1.5s", d, timeout-50*time.Millisecond)
		}
		t.Logf("closed after %v (err %v, %d bytes)", d, err, len(got))
	}

	t.Run("half request", func(t *testing.T) {
		start := time.Now()
		rc := rawDial(t, addr)
		req := rawUpgradeRequest()
		rc.write([]byte(req[:len(req)/2]))
		d, got, err := closedAfter(t, rc, start)
		if err != nil {
			t.Errorf("read: got %v; want io.EOF", err)
		}
		checkClosed(t, d, got, err)
	})

	t.Run("nothing sent", func(t *testing.T) {
		start := time.Now()
		rc := rawDial(t, addr)
		d, got, err := closedAfter(t, rc, start)
		checkClosed(t, d, got, err)
	})

	t.Run("trickle does not extend", func(t *testing.T) {
		start := time.Now()
		rc := rawDial(t, addr)
		req := []byte(rawUpgradeRequest()) // ~150 bytes: 15 s at this pace
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range req {
				rc.nc.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := rc.nc.Write(req[i : i+1]); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		d, got, err := closedAfter(t, rc, start)
		close(stop)
		wg.Wait()
		checkClosed(t, d, got, err)
	})

	t.Run("upgraded connection outlives it", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		time.Sleep(3 * timeout)
		rc.echo(rawOpText, []byte("still open"))
	})
}

// The greeting must be the first frame of every connection, even when a
// time push is due at the very moment of the upgrade. PushInterval 1ns makes
// the wheel push continuously, so the window between the connection joining
// the wheel and the greeting being written is hit often.
func TestHandshakeGreetingIsFirstFrame(t *testing.T) {
	cfg := rawConfig()
	cfg.PushInterval = time.Nanosecond
	_, addr := startServer(t, cfg)
	deadline := time.Now().Add(3 * time.Second)
	n := 0
	for ; n < 3000 && time.Now().Before(deadline); n++ {
		rc := rawDial(t, addr)
		rc.write([]byte(rawUpgradeRequest()))
		rc.expectUpgraded(rawKey)
		f, err := rc.rawRead(rawTimeout)
		if err != nil {
			t.Fatalf("handshake %d: reading the first frame: %v", n, err)
		}
		if f.op != rawOpText || !bytes.Equal(f.payload, rawGreeting) {
			t.Fatalf("handshake %d: first frame: got %v; want the greeting %q", n, f, rawGreeting)
		}
		rc.nc.Close()
	}
	t.Logf("%d handshakes, greeting first in each", n)
}

// rawManyHeaders returns n distinct small header lines.
func rawManyHeaders(n int) []string {
	h := make([]string, n)
	for i := range h {
		h[i] = fmt.Sprintf("X-H%d: v", i)
	}
	return h
}

// rawBigHeaders returns n header lines of size bytes each.
func rawBigHeaders(n, size int) []string {
	h := make([]string, n)
	for i := range h {
		name := fmt.Sprintf("X-B%d: ", i)
		h[i] = name + strings.Repeat("z", size-len(name))
	}
	return h
}
