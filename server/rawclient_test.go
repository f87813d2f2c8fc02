package server

// The raw WebSocket client of the conformance tests (conformance_test.go):
// it speaks to the server byte by byte over a plain net.Conn, so that every
// detail of the wire format (header encodings, masking, fragmentation, close
// codes, TCP shutdown) is visible and under the test's control. Frames are
// built by hand (rawFrame, rawFrameB0, rawHeader), requests too (rawReq),
// and can be written whole, chopped into pieces or with pauses. Every read
// has a deadline: no test can hang. Helpers fail with "got ...; want ...".

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
		t.Fatalf("dial %s: got %v; want a connection", addr, err)
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
		rc.t.Fatalf("write of %d bytes: got %v; want no error", len(b), err)
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
		rc.t.Fatalf("handshake response: got %v; want a 101 response", err)
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
		rc.t.Fatalf("reading a frame: got %v; want a frame", err)
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

// rawMasked returns p masked with key.
func rawMasked(p, key []byte) []byte {
	q := make([]byte, len(p))
	for i := range p {
		q[i] = p[i] ^ key[i&3]
	}
	return q
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

// rawFailCase is a sequence of writes after which the server must fail the
// connection with Close code want.
type rawFailCase struct {
	name   string
	writes [][]byte // written one after another, each in one Write
	echo   []byte   // when not nil: a text echo that comes before the Close
	want   uint16
}

// rawRunFailCases runs every case as a subtest on its own connection to
// addr: the writes (2 ms apart), the echo if any, then the Close with the
// expected code followed by the server's FIN.
func rawRunFailCases(t *testing.T, addr string, cases []rawFailCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := rawHandshake(t, addr)
			for _, w := range tc.writes {
				rc.write(w)
				time.Sleep(2 * time.Millisecond)
			}
			if tc.echo != nil {
				rc.expectFrame(rawOpText, tc.echo)
			}
			rc.expectClose(tc.want)
		})
	}
}

// rawWaitLive polls s.Stats().Live until it equals want and returns how long
// that took, failing after d.
func rawWaitLive(t testing.TB, s *Server, want int64, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := s.Stats().Live
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("Stats().Live after %v: got %d; want %d", d, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// expectDropped checks on the wire that the server has closed its
// descriptor, within d: once it has, a write to it draws a reset from its
// kernel and a later write fails with EPIPE or ECONNRESET. (A half-closed
// server socket takes the bytes without complaint.) It writes one zero byte
// every 5 ms; the server ignores input after its Close.
func (rc *rawConn) expectDropped(d time.Duration) time.Duration {
	rc.t.Helper()
	start := time.Now()
	for {
		rc.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, err := rc.nc.Write([]byte{0})
		if err != nil {
			if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				rc.t.Fatalf("write after the server closed: got %v; want EPIPE or ECONNRESET", err)
			}
			return time.Since(start)
		}
		if time.Since(start) > d {
			rc.t.Fatalf("writes after %v: got no error; want EPIPE or ECONNRESET (server descriptor still open)", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
