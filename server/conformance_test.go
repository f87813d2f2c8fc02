package server

// RFC 6455 conformance suite: the server is driven over plain TCP by the raw
// client of rawclient_test.go, which builds every frame byte by byte and can
// write it whole, chopped into 1-3 byte pieces or with pauses. Every case
// asserts the exact echo or the exact Close code (followed by the server's
// FIN). One test per RFC section:
//
//	Section                             Test
//	4.1, 4.2.1, 4.2.2, 4.4 handshake    TestRFC4_2_OpeningHandshake: one byte per write;
//	                                    request and first frames in one write; the
//	                                    greeting is the first frame; request table
//	                                    (101, 400, 404, 405, 414, 426, 431, 505,
//	                                    extensions and subprotocols declined); Origin (403)
//	4.2 (server limits)                 TestRFC4_2_HandshakeTimeout
//	4.2.2 (refusal, 503)                TestRFC4_2_ConnectionLimit
//	5.1 masking                         TestRFC5_1_Masking: unmasked client frame -> 1002
//	5.2 base framing                    TestRFC5_2_BaseFraming: RSV bits, reserved
//	                                    opcodes, 64-bit length MSB -> 1002; minimal length
//	                                    encodings of echoes (0 ... 1 MiB)
//	5.4 fragmentation                   TestRFC5_4_Fragmentation: reassembly, ping between
//	                                    fragments answered first, chopped writes, delays;
//	                                    continuation without message, new data frame
//	                                    inside a message -> 1002
//	5.5 control frames                  TestRFC5_5_ControlFrames: > 125 bytes or
//	                                    fragmented -> 1002
//	5.5.1, 7.4 Close                    TestRFC5_5_1_Close: code table, 1-byte body,
//	                                    reason UTF-8, frames after Close ignored, nothing
//	                                    sent after our Close
//	5.5.2, 5.5.3 Ping, Pong             TestRFC5_5_2_PingPong
//	7.1.1, 7.1.7 closing the TCP        TestRFC7_1_CloseConnection: server closes TCP at
//	  connection                        once after both Closes; half-close after a
//	                                    failure; silent peer dropped after CloseTimeout
//	8.1 UTF-8 (5.6, 7.1.7)              TestRFC8_1_UTF8: invalid -> 1007 as soon as the
//	                                    bad byte arrives; noncharacters and 4-byte
//	                                    characters split across fragments echoed
//	10.4 message size                   TestRFC10_4_MessageSize: -> 1009 from the declared
//	                                    length; exactly MaxMessage echoed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// confPrompt bounds what "at once" means on the wire: generous for a loaded
// machine, far below the close timeouts the tests use to tell them apart.
const confPrompt = 200 * time.Millisecond

// confKey is a fixed masking key for hand-built headers.
var confKey = []byte{0x11, 0x22, 0x33, 0x44}

// ---------------------------------------------------------------------------
// 4. Opening handshake

func TestRFC4_2_OpeningHandshake(t *testing.T) {
	_, addr := startServer(t, rawConfig())

	t.Run("one byte per write", func(t *testing.T) {
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
	})

	t.Run("with first frame", func(t *testing.T) {
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

		// The request, then the first frame cut in the middle of its header:
		// the rest follows in a later write.
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

		// A large first frame in the same write: the request and the start
		// of the frame fill the server's first read; the rest arrives later.
		t.Run("large first frame", func(t *testing.T) {
			rc := rawDial(t, addr)
			msg := rawBytes(rand.New(rand.NewPCG(1, 2)), 100_000)
			b := append([]byte(rawUpgradeRequest()), rawFrame(rawOpBinary, true, msg, true)...)
			rc.write(b)
			rc.expectUpgraded(rawKey)
			rc.expectGreeting()
			rc.expectFrame(rawOpBinary, msg)
		})
	})

	t.Run("requests", func(t *testing.T) {
		cfg := rawConfig()
		cfg.HandshakeTimeout = 3 * time.Second
		_, addr := startServer(t, cfg)
		confRunRequests(t, addr, []confRequestCase{
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
			// [RFC6455 4.2.1] item 5: the key is "a base64-encoded value
			// that, when decoded, is 16 bytes in length". These two are 24
			// characters long but are not that.
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
			// [RFC6455 4.2.2]: extensions and subprotocols the server does
			// not use are left out of the 101.
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
		})
	})

	// [RFC6455 4.2.2, 10.2]: a server that checks Origin answers a refused
	// one with an HTTP error such as 403; clients that send no Origin (not
	// browsers) pass.
	t.Run("origin", func(t *testing.T) {
		cfg := rawConfig()
		cfg.Origins = []string{"https://example.com"}
		_, addr := startServer(t, cfg)
		withOrigin := func(origin string) string {
			return rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer, "Origin: "+origin)
		}
		confRunRequests(t, addr, []confRequestCase{
			{"no Origin", rawUpgradeRequest(), 101, nil},
			{"allowed Origin", withOrigin("https://example.com"), 101, nil},
			{"other Origin", withOrigin("https://evil.example"), 403, nil},
			{"other scheme", withOrigin("http://example.com"), 403, nil},
			{"Origin null", withOrigin("null"), 403, nil},
			// An allow-list adds to the page's own origin, it does not
			// take it away.
			{"same origin", withOrigin("http://127.0.0.1"), 101, nil},
		})
	})

	// Without Origins the default is gorilla/websocket's: no Origin (not a
	// browser) or the page's own origin, whatever its scheme (a page behind
	// a TLS-terminating proxy is https while the hop to us is http). Any
	// other site's page would otherwise open a connection carrying the
	// user's cookies (cross-site WebSocket hijacking) and read the answer.
	t.Run("origin default same-origin", func(t *testing.T) {
		_, addr := startServer(t, rawConfig())
		req := func(host, origin string) string {
			h := []string{"Host: " + host, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer}
			if origin != "" {
				h = append(h, "Origin: "+origin)
			}
			return rawReq("GET /ws HTTP/1.1", h...)
		}
		confRunRequests(t, addr, []confRequestCase{
			{"no Origin", req("127.0.0.1", ""), 101, nil},
			{"same origin", req("127.0.0.1", "http://127.0.0.1"), 101, nil},
			{"same origin, https", req("127.0.0.1", "https://127.0.0.1"), 101, nil},
			{"same origin, any case", req("Example.COM:8443", "HTTPS://example.com:8443"), 101, nil},
			{"other port", req("127.0.0.1", "http://127.0.0.1:9"), 403, nil},
			{"other host", req("127.0.0.1", "https://evil.example"), 403, nil},
			{"host as prefix", req("127.0.0.1", "http://127.0.0.1.evil.example"), 403, nil},
			{"path in Origin", req("127.0.0.1", "http://127.0.0.1/"), 403, nil},
			{"no scheme", req("127.0.0.1", "127.0.0.1"), 403, nil},
			{"Origin null", req("127.0.0.1", "null"), 403, nil},
		})
	})

	// Origins "*" allows every origin, explicitly.
	t.Run("origin star", func(t *testing.T) {
		cfg := rawConfig()
		cfg.Origins = []string{"*"}
		_, addr := startServer(t, cfg)
		withOrigin := func(origin string) string {
			return rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer, "Origin: "+origin)
		}
		confRunRequests(t, addr, []confRequestCase{
			{"other Origin", withOrigin("https://evil.example"), 101, nil},
			{"Origin null", withOrigin("null"), 101, nil},
		})
	})

	// The greeting must be the first frame of every connection, even when a
	// time push is due at the very moment of the upgrade. PushInterval 1ns
	// makes the wheel push continuously, so the window between the
	// connection joining the wheel and the greeting being written is hit
	// often.
	t.Run("greeting is first frame", func(t *testing.T) {
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
				t.Fatalf("handshake %d: reading the first frame: got %v; want the greeting", n, err)
			}
			if f.op != rawOpText || !bytes.Equal(f.payload, rawGreeting) {
				t.Fatalf("handshake %d: first frame: got %v; want the greeting %q", n, f, rawGreeting)
			}
			rc.nc.Close()
		}
		t.Logf("%d handshakes, greeting first in each", n)
	})
}

// confRequestCase is one HTTP request and the status it must get.
type confRequestCase struct {
	name  string
	req   string
	want  int
	check func(t *testing.T, r rawResponse)
}

// confRunRequests sends each request on its own connection to addr. A 101
// must carry the right accept key and lead to a working connection; any
// other status must be followed by the end of the connection.
func confRunRequests(t *testing.T, addr string, cases []confRequestCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := rawDial(t, addr)
			rc.write([]byte(tc.req))
			r, err := rc.readResponse(rawTimeout)
			if err != nil {
				t.Fatalf("response: got %v; want status %d", err, tc.want)
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

func TestRFC4_2_HandshakeTimeout(t *testing.T) {
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

func TestRFC4_2_ConnectionLimit(t *testing.T) {
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
		t.Fatalf("third client: got %v; want a 503 response", err)
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

// ---------------------------------------------------------------------------
// 5. Data framing

// [RFC6455 5.1]: a client MUST mask every frame; the server MUST close the
// connection on an unmasked frame (1002). A server MUST NOT mask (checked
// on every frame read by rawConn.next).
func TestRFC5_1_Masking(t *testing.T) {
	_, addr := startServer(t, rawConfig())
	t.Run("rejected", func(t *testing.T) {
		rawRunFailCases(t, addr, []rawFailCase{
			{name: "unmasked text", writes: [][]byte{rawFrame(rawOpText, true, []byte("hi"), false)}, want: 1002},
			{name: "unmasked ping", writes: [][]byte{rawFrame(rawOpPing, true, []byte("hi"), false)}, want: 1002},
			{name: "unmasked binary", writes: [][]byte{rawFrame(rawOpBinary, true, []byte{1, 2, 3}, false)}, want: 1002},
			{name: "unmasked empty text", writes: [][]byte{rawFrame(rawOpText, true, nil, false)}, want: 1002},
			{name: "unmasked close", writes: [][]byte{rawFrame(rawOpClose, true, rawCloseBody(1000, ""), false)}, want: 1002},
			{name: "unmasked continuation", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("a"), true),
				rawFrame(rawOpCont, true, []byte("b"), false),
			}, want: 1002},
		})
	})
	// Any 32-bit value is a valid masking key, zero included.
	t.Run("zero masking key", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		msg := []byte("zero key")
		rc.write(append(rawHeader(0x80|rawOpText, uint64(len(msg)), []byte{0, 0, 0, 0}), msg...))
		rc.expectFrame(rawOpText, msg)
	})
}

// [RFC6455 5.2]: RSV bits without a negotiated extension, reserved opcodes
// and a 64-bit length with its most significant bit set fail the
// connection (1002); the server encodes lengths in the minimal form.
func TestRFC5_2_BaseFraming(t *testing.T) {
	_, addr := startServer(t, rawConfig())

	t.Run("rejected", func(t *testing.T) {
		// msb64 is a masked binary header declaring a 64-bit length with
		// the most significant bit set.
		msb64 := append([]byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 5}, confKey...)
		cases := []rawFailCase{
			{name: "RSV1", writes: [][]byte{rawFrameB0(0x80|0x40|rawOpText, []byte("hi"), true)}, want: 1002},
			{name: "RSV2", writes: [][]byte{rawFrameB0(0x80|0x20|rawOpBinary, []byte("hi"), true)}, want: 1002},
			{name: "RSV3", writes: [][]byte{rawFrameB0(0x80|0x10|rawOpPing, []byte("hi"), true)}, want: 1002},
			{name: "RSV1 on continuation", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("a"), true),
				rawFrameB0(0x80|0x40|rawOpCont, []byte("b"), true),
			}, want: 1002},
			{name: "RSV2 on close", writes: [][]byte{rawFrameB0(0x80|0x20|rawOpClose, rawCloseBody(1000, ""), true)}, want: 1002},
			{name: "opcode 3", writes: [][]byte{rawFrame(0x3, true, []byte("hi"), true)}, want: 1002},
			{name: "opcode 7", writes: [][]byte{rawFrame(0x7, true, nil, true)}, want: 1002},
			{name: "opcode 0xB", writes: [][]byte{rawFrame(0xB, true, []byte("hi"), true)}, want: 1002},
			{name: "opcode 0xF", writes: [][]byte{rawFrame(0xF, true, nil, true)}, want: 1002},
			{name: "64-bit length with MSB set", writes: [][]byte{msb64}, want: 1002},
		}
		for _, op := range []byte{0x4, 0x5, 0x6, 0xC, 0xD, 0xE} {
			cases = append(cases, rawFailCase{name: fmt.Sprintf("opcode %#x", op),
				writes: [][]byte{rawFrame(op, true, []byte("hi"), true)}, want: 1002})
		}
		cases = append(cases, rawFailCase{name: "reserved opcode inside fragmented message", writes: [][]byte{
			rawFrame(rawOpBinary, false, []byte("a"), true),
			rawFrame(0x3, false, []byte("b"), true),
		}, want: 1002})
		rawRunFailCases(t, addr, cases)
	})

	t.Run("echo sizes", func(t *testing.T) {
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
	})
}

// [RFC6455 5.4]: fragments are reassembled in order, control frames may come
// between them (and are answered at once), and only continuation frames may
// follow a non-final data frame.
func TestRFC5_4_Fragmentation(t *testing.T) {
	_, addr := startServer(t, rawConfig())

	t.Run("ping between fragments", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))

		text := []byte("Grüße, 世界! 🌍 — fragments")
		// Cut points inside multi-byte runes: the first fragment ends with
		// the lead byte of ü, the second ends inside 🌍.
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
	})

	// Three fragments of a text message (cut inside multi-byte runes), each
	// written in 1-3 byte pieces 30 ms apart: the server waits, and echoes
	// the message whole only once its last byte is in.
	t.Run("chopped writes with 30ms delays", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		msg := []byte("Grüße — 世界 🌍!")
		i := bytes.Index(msg, []byte("ü")) + 1
		j := bytes.Index(msg, []byte("🌍")) + 3
		wire := bytes.Join([][]byte{
			rawFrame(rawOpText, false, msg[:i], true),
			rawFrame(rawOpCont, false, msg[i:j], true),
			rawFrame(rawOpCont, true, msg[j:], true),
		}, nil)
		rc.writeChopped(wire[:len(wire)-1], 1, 3, 30*time.Millisecond)
		confExpectSilence(rc, 100*time.Millisecond)
		rc.write(wire[len(wire)-1:])
		rc.expectFrame(rawOpText, msg)
		rc.echo(rawOpText, []byte("after"))
	})

	t.Run("many fragments", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		rng := rand.New(rand.NewPCG(9, 10))
		for _, op := range []byte{rawOpText, rawOpBinary} {
			var msg []byte
			if op == rawOpText {
				msg = rawText(rng, 4000)
			} else {
				msg = rawBytes(rng, 4000)
			}
			// 50 fragments of 0 to 150 bytes, empty ones included, with
			// cuts anywhere (inside runes too).
			var wire []byte
			first, rest := op, msg
			for k := 0; k < 49; k++ {
				n := min(rng.IntN(151), len(rest))
				if k%7 == 3 {
					n = 0
				}
				wire = append(wire, rawFrame(first, false, rest[:n], true)...)
				first, rest = rawOpCont, rest[n:]
			}
			wire = append(wire, rawFrame(rawOpCont, true, rest, true)...)
			rc.write(wire)
			rc.expectFrame(op, msg)
		}
	})

	t.Run("rejected", func(t *testing.T) {
		rawRunFailCases(t, addr, []rawFailCase{
			{name: "continuation without message", writes: [][]byte{rawFrame(rawOpCont, true, []byte("c"), true)}, want: 1002},
			{name: "non-final continuation without message", writes: [][]byte{rawFrame(rawOpCont, false, []byte("c"), true)}, want: 1002},
			{name: "text inside fragmented message", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("a"), true),
				rawFrame(rawOpText, true, []byte("b"), true),
			}, want: 1002},
			{name: "binary inside fragmented text", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("a"), true),
				rawFrame(rawOpBinary, false, []byte("b"), true),
			}, want: 1002},
			{name: "text inside fragmented binary", writes: [][]byte{
				rawFrame(rawOpBinary, false, []byte("a"), true),
				rawFrame(rawOpText, true, []byte("b"), true),
			}, want: 1002},
			{name: "continuation after finished message", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("a"), true),
				rawFrame(rawOpCont, true, []byte("b"), true),
				rawFrame(rawOpCont, true, []byte("c"), true),
			}, echo: []byte("ab"), want: 1002},
		})
	})
}

// confExpectSilence checks that no frame but a time push arrives for d.
func confExpectSilence(rc *rawConn, d time.Duration) {
	rc.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, err := rc.rawRead(time.Until(deadline))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return
		}
		if err != nil {
			rc.t.Fatalf("waiting %v for silence: got %v; want a timeout", d, err)
		}
		if !rawIsTimePush(f) {
			rc.t.Fatalf("before the last byte was sent: got frame %v; want none", f)
		}
	}
}

// [RFC6455 5.5]: control frames have at most 125 bytes of payload and MUST
// NOT be fragmented.
func TestRFC5_5_ControlFrames(t *testing.T) {
	_, addr := startServer(t, rawConfig())
	rawRunFailCases(t, addr, []rawFailCase{
		{name: "ping 126 bytes", writes: [][]byte{rawFrame(rawOpPing, true, make([]byte, 126), true)}, want: 1002},
		{name: "pong 126 bytes", writes: [][]byte{rawFrame(rawOpPong, true, make([]byte, 126), true)}, want: 1002},
		{name: "close 126 bytes", writes: [][]byte{rawFrame(rawOpClose, true, rawCloseBody(1000, strings.Repeat("x", 124)), true)}, want: 1002},
		{name: "ping header only declaring 126", writes: [][]byte{rawHeader(0x80|rawOpPing, 126, confKey)}, want: 1002},
		{name: "ping header only declaring 64 KiB", writes: [][]byte{rawHeader(0x80|rawOpPing, 65536, confKey)}, want: 1002},
		{name: "fragmented ping", writes: [][]byte{rawFrame(rawOpPing, false, []byte("p"), true)}, want: 1002},
		{name: "fragmented pong", writes: [][]byte{rawFrame(rawOpPong, false, []byte("p"), true)}, want: 1002},
		{name: "fragmented close", writes: [][]byte{rawFrame(rawOpClose, false, rawCloseBody(1000, ""), true)}, want: 1002},
		{name: "fragmented ping inside fragmented message", writes: [][]byte{
			rawFrame(rawOpText, false, []byte("a"), true),
			rawFrame(rawOpPing, false, []byte("p"), true),
		}, want: 1002},
	})
}

// [RFC6455 5.5.1, 7.4]: a Close is answered with a Close echoing a valid
// code (or an empty one for an empty body); invalid codes and 1-byte bodies
// are 1002, a reason that is not UTF-8 is 1007; nothing after the Close is
// processed, nothing is sent after ours, and the server closes TCP.
func TestRFC5_5_1_Close(t *testing.T) {
	_, addr := startServer(t, rawConfig())
	cases := []struct {
		name string
		body []byte
		want uint16 // 0: empty Close body expected
	}{
		{"1000 with reason", rawCloseBody(1000, "bye"), 1000},
		{"1000 without reason", rawCloseBody(1000, ""), 1000},
		{"1001", rawCloseBody(1001, "going"), 1001},
		{"1002", rawCloseBody(1002, ""), 1002},
		{"1003", rawCloseBody(1003, ""), 1003},
		{"1007", rawCloseBody(1007, ""), 1007},
		{"1011", rawCloseBody(1011, ""), 1011},
		{"1014", rawCloseBody(1014, ""), 1014},
		{"3000", rawCloseBody(3000, "app"), 3000},
		{"4999", rawCloseBody(4999, "private"), 4999},
		{"utf8 reason", rawCloseBody(1000, "tschüß 世界"), 1000},
		{"123-byte reason", rawCloseBody(1000, strings.Repeat("r", 123)), 1000},
		{"empty body", nil, 0},
		{"code 1004", rawCloseBody(1004, ""), 1002},
		{"code 1005", rawCloseBody(1005, ""), 1002},
		{"code 1006", rawCloseBody(1006, ""), 1002},
		{"code 1015", rawCloseBody(1015, ""), 1002},
		{"code 999", rawCloseBody(999, ""), 1002},
		{"code 0", rawCloseBody(0, ""), 1002},
		{"code 1016", rawCloseBody(1016, ""), 1002},
		{"code 2999", rawCloseBody(2999, ""), 1002},
		{"code 5000", rawCloseBody(5000, ""), 1002},
		{"code 65535", rawCloseBody(65535, ""), 1002},
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

	// [RFC6455 5.5.1]: "After sending a Close frame, the endpoint MUST NOT
	// send any more data frames." With PushInterval 1ns the wheel pushes the
	// time continuously, so a push racing with the Close is likely; after
	// the Close, only the FIN may come.
	t.Run("nothing sent after our Close while pushes race", func(t *testing.T) {
		cfg := rawConfig()
		cfg.PushInterval = time.Nanosecond
		_, addr := startServer(t, cfg)
		deadline := time.Now().Add(2 * time.Second)
		n := 0
		defer func() {
			if t.Failed() {
				kind := [2]string{"client Close 1000", "unmasked frame, our Close 1002"}[n%2]
				t.Logf("failed at close %d (%s)", n, kind)
			}
		}()
		for ; n < 1000 && time.Now().Before(deadline); n++ {
			rc := rawHandshake(t, addr)
			if n%2 == 0 {
				rc.write(rawFrame(rawOpClose, true, rawCloseBody(1000, ""), true))
				rc.expectClose(1000)
			} else {
				rc.write(rawFrame(rawOpText, true, []byte("hi"), false))
				rc.expectClose(1002)
			}
			rc.nc.Close()
		}
		t.Logf("%d closes, nothing after the Close in any", n)
	})
}

// [RFC6455 5.5.2, 5.5.3]: a Ping is answered by a Pong with the same
// payload, in order; an unsolicited Pong needs no answer.
func TestRFC5_5_2_PingPong(t *testing.T) {
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

// ---------------------------------------------------------------------------
// 7. Closing the connection

// [RFC6455 7.1.1]: once both Close frames are exchanged the server SHOULD
// close the TCP connection first, at once. After our Close without an answer
// yet, the server half-closes (its FIN follows the Close frame, see
// finishClosing) and keeps the descriptor until the peer's Close (clean
// close), its FIN, or Config.CloseTimeout. After a protocol failure ([RFC6455
// 7.1.7]) the input is no longer at a frame boundary: only the peer's FIN or
// the timeout ends it.
//
// The wire shows the difference between a half-closed and a closed server
// socket: a write to a closed one draws a reset (rawConn.expectDropped).
// Stats().Live shows when the descriptor goes.
func TestRFC7_1_CloseConnection(t *testing.T) {
	t.Run("client Close: TCP closed at once", func(t *testing.T) {
		cfg := rawConfig()
		cfg.CloseTimeout = 5 * time.Second // far beyond "at once"
		s, addr := startServer(t, cfg)
		rc := rawHandshake(t, addr)
		start := time.Now()
		rc.write(rawFrame(rawOpClose, true, rawCloseBody(1000, "bye"), true))
		rc.expectClose(1000)
		if d := time.Since(start); d > confPrompt {
			t.Errorf("Close and FIN after %v; want within %v", d, confPrompt)
		}
		rawWaitLive(t, s, 0, confPrompt)
		rc.expectDropped(confPrompt)
		t.Logf("descriptor closed within %v of our Close", time.Since(start))
	})

	t.Run("server Close answered: TCP closed at once", func(t *testing.T) {
		cfg := rawConfig()
		cfg.CloseTimeout = 5 * time.Second
		cfg.PushInterval = 20 * time.Millisecond
		cfg.IdleTimeout = 100 * time.Millisecond
		s, addr := startServer(t, cfg)
		rc := rawHandshake(t, addr)
		// Silent: the server pings (not answered), then closes with 1001.
		if f := rc.next(); f.op != rawOpPing || !f.fin || len(f.payload) != 0 {
			t.Fatalf("frame: got %v; want the idle Ping", f)
		}
		rc.expectClose(1001) // the Close, then the half-close FIN
		if got := s.Stats().Live; got != 1 {
			t.Fatalf("Stats().Live before our answer: got %d; want 1 (waiting for our Close)", got)
		}
		start := time.Now()
		rc.write(rawFrame(rawOpClose, true, rawCloseBody(1001, ""), true))
		rawWaitLive(t, s, 0, confPrompt)
		rc.expectDropped(confPrompt)
		t.Logf("descriptor closed within %v of our answering Close", time.Since(start))
	})

	t.Run("failed connection: FIN at once, client FIN ends it", func(t *testing.T) {
		cfg := rawConfig()
		cfg.CloseTimeout = 5 * time.Second
		s, addr := startServer(t, cfg)
		rc := rawHandshake(t, addr)
		start := time.Now()
		rc.write(rawFrame(rawOpText, true, []byte("ok\xFFno"), true))
		rc.expectClose(1007)
		if d := time.Since(start); d > confPrompt {
			t.Errorf("Close and FIN after %v; want within %v", d, confPrompt)
		}
		if got := s.Stats().Live; got != 1 {
			t.Fatalf("Stats().Live after the half-close: got %d; want 1 (waiting for our FIN)", got)
		}
		start = time.Now()
		rc.write(rawFrame(rawOpClose, true, rawCloseBody(1007, ""), true))
		if err := rc.nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: got %v; want nil", err)
		}
		rawWaitLive(t, s, 0, confPrompt)
		t.Logf("descriptor closed within %v of our FIN", time.Since(start))
	})

	t.Run("failed connection, silent client: dropped after CloseTimeout", func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		cfg := rawConfig()
		cfg.CloseTimeout = timeout
		s, addr := startServer(t, cfg)
		rc := rawHandshake(t, addr)
		start := time.Now()
		rc.write(rawFrame(rawOpText, true, []byte("hi"), false)) // unmasked
		rc.expectClose(1002)
		if d := time.Since(start); d > confPrompt {
			t.Errorf("Close and FIN after %v; want within %v", d, confPrompt)
		}
		// The client neither answers nor closes its socket.
		rawWaitLive(t, s, 0, 1500*time.Millisecond)
		d := time.Since(start)
		if d < timeout-50*time.Millisecond || d > 1500*time.Millisecond {
			t.Errorf("descriptor closed after %v; want between %v and 1.5s", d, timeout-50*time.Millisecond)
		}
		rc.expectDropped(confPrompt)
		t.Logf("descriptor closed after %v (CloseTimeout %v)", d, timeout)
	})
}

// ---------------------------------------------------------------------------
// 8. Error handling: UTF-8

// [RFC6455 8.1, 5.6]: text must be valid UTF-8, checked as it arrives: the
// connection fails (1007) on the fragment, or the part of a frame, that
// holds the first invalid byte, without waiting for the rest. Valid code
// points that are noncharacters are valid UTF-8 and are echoed.
func TestRFC8_1_UTF8(t *testing.T) {
	_, addr := startServer(t, rawConfig())
	key := confKey

	t.Run("invalid", func(t *testing.T) {
		rawRunFailCases(t, addr, []rawFailCase{
			{name: "invalid utf8 text", writes: [][]byte{rawFrame(rawOpText, true, []byte("ok\xFFno"), true)}, want: 1007},
			{name: "surrogate in text", writes: [][]byte{rawFrame(rawOpText, true, []byte("\xED\xA0\x80"), true)}, want: 1007},
			{name: "overlong in text", writes: [][]byte{rawFrame(rawOpText, true, []byte("\xC0\x80"), true)}, want: 1007},
			{name: "above U+10FFFF in text", writes: [][]byte{rawFrame(rawOpText, true, []byte("\xF4\x90\x80\x80"), true)}, want: 1007},
			{name: "text ends inside a rune", writes: [][]byte{rawFrame(rawOpText, true, []byte("ab\xE2\x82"), true)}, want: 1007},
			{name: "invalid utf8 in first fragment", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("ab\xFF"), true),
			}, want: 1007},
			{name: "invalid utf8 across fragments, no final fragment", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("abc\xE2"), true), // valid so far: a lead byte
				rawFrame(rawOpCont, false, []byte("\x28xyz"), true), // 0x28 cannot continue it
			}, want: 1007},
			{name: "invalid utf8 across three fragments, no final fragment", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("\xF0"), true),
				rawFrame(rawOpCont, false, []byte("\x9F"), true),
				rawFrame(rawOpCont, false, []byte("\x98\x41"), true),
			}, want: 1007},
			{name: "surrogate across fragments, no final fragment", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("ab\xED"), true),
				rawFrame(rawOpCont, false, []byte("\xA0\x80cd"), true),
			}, want: 1007},
			{name: "fragmented text ends inside a rune", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("a\xE2"), true),
				rawFrame(rawOpCont, true, []byte("\x82"), true),
			}, want: 1007},
			{name: "invalid utf8 in partial frame, rest never sent", writes: [][]byte{
				rawHeader(0x80|rawOpText, 100, key),
				rawMasked([]byte("ab\xFF"), key),
			}, want: 1007},
			{name: "invalid utf8 in partial fragment, rest never sent", writes: [][]byte{
				rawFrame(rawOpText, false, []byte("ab\xE2"), true),
				append(rawHeader(rawOpCont, 100, key), rawMasked([]byte("\x82\x28"), key)...),
			}, want: 1007},
		})
	})

	// Noncharacters and the highest code point are valid UTF-8 ([RFC3629]
	// does not exclude them): echoed, whole or cut anywhere.
	t.Run("noncharacters echoed", func(t *testing.T) {
		for _, nc := range []struct{ name, s string }{
			{"U+FFFE", "\uFFFE"},
			{"U+FFFF", "\uFFFF"},
			{"U+FDD0", "\uFDD0"},
			{"U+FDEF", "\uFDEF"},
			{"U+1FFFE", "\U0001FFFE"},
			{"U+10FFFF", "\U0010FFFF"},
		} {
			t.Run(nc.name, func(t *testing.T) {
				if !utf8.ValidString(nc.s) {
					t.Fatalf("test data %q: got invalid UTF-8; want valid", nc.s)
				}
				rc := rawHandshake(t, addr)
				msg := []byte("<" + nc.s + ">")
				rc.echo(rawOpText, msg)
				rc.echo(rawOpText, []byte(nc.s))
				// Cut after every byte of the character.
				for cut := 2; cut < len(msg)-1; cut++ {
					rc.write(rawFrame(rawOpText, false, msg[:cut], true))
					rc.write(rawFrame(rawOpCont, true, msg[cut:], true))
					rc.expectFrame(rawOpText, msg)
				}
				// A frame arriving in 1-3 byte pieces: the incremental
				// validator sees the character split across reads.
				long := []byte(strings.Repeat(nc.s+"x", 20))
				rc.writeChopped(rawFrame(rawOpText, true, long, true), 1, 3, 0)
				rc.expectFrame(rawOpText, long)
			})
		}
	})

	t.Run("4-byte characters split across fragments", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		for _, r := range []string{"🌍", "😀", "𝄞", "\U00010000", "\U0010FFFF"} {
			if len(r) != 4 {
				t.Fatalf("test data %q: got %d bytes; want 4", r, len(r))
			}
			msg := []byte("a" + r + "b")
			for cut := 2; cut <= 4; cut++ { // after byte 1, 2 or 3 of the character
				rc.write(rawFrame(rawOpText, false, msg[:cut], true))
				rc.write(rawFrame(rawOpCont, true, msg[cut:], true))
				rc.expectFrame(rawOpText, msg)
			}
			// One byte per fragment, an empty final fragment.
			b := rawFrame(rawOpText, false, []byte(r[:1]), true)
			for i := 1; i < 4; i++ {
				b = append(b, rawFrame(rawOpCont, false, []byte(r[i:i+1]), true)...)
			}
			b = append(b, rawFrame(rawOpCont, true, nil, true)...)
			rc.write(b)
			rc.expectFrame(rawOpText, []byte(r))
		}
	})
}

// ---------------------------------------------------------------------------
// 10. Security considerations: message size

// [RFC6455 10.4]: the server limits the message size (Config.MaxMessage,
// inclusive, on the whole message) and fails with 1009 from the declared
// length, before reading or buffering the payload.
func TestRFC10_4_MessageSize(t *testing.T) {
	cfg := rawConfig()
	cfg.MaxMessage = 1024
	_, addr := startServer(t, cfg)
	key := confKey

	t.Run("rejected", func(t *testing.T) {
		rawRunFailCases(t, addr, []rawFailCase{
			{name: "message over MaxMessage, header only", writes: [][]byte{rawHeader(0x80|rawOpBinary, 2000, key)}, want: 1009},
			{name: "text over MaxMessage, header only", writes: [][]byte{rawHeader(0x80|rawOpText, 1025, key)}, want: 1009},
			{name: "64-bit length over MaxMessage, header only", writes: [][]byte{rawHeader(0x80|rawOpBinary, 1<<40, key)}, want: 1009},
			{name: "fragments over MaxMessage", writes: [][]byte{
				rawFrame(rawOpText, false, bytes.Repeat([]byte("a"), 600), true),
				rawFrame(rawOpCont, false, bytes.Repeat([]byte("b"), 600), true),
			}, want: 1009},
			{name: "fragments over MaxMessage, second header only", writes: [][]byte{
				rawFrame(rawOpBinary, false, make([]byte, 1000), true),
				rawHeader(rawOpCont, 25, key),
			}, want: 1009},
			{name: "fragments over MaxMessage by one", writes: [][]byte{
				rawFrame(rawOpBinary, false, make([]byte, 1000), true),
				rawFrame(rawOpCont, false, make([]byte, 24), true),
				rawFrame(rawOpCont, true, make([]byte, 1), true),
			}, want: 1009},
		})
	})

	// MaxMessage is inclusive: a message of exactly MaxMessage bytes, whole
	// or in fragments, is echoed.
	t.Run("max message boundary", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		rc := rawHandshake(t, addr)
		msg := rawText(rng, 1024)
		rc.echo(rawOpText, msg)
		rc.write(rawFrame(rawOpBinary, false, msg[:512], true))
		rc.write(rawFrame(rawOpCont, true, msg[512:], true))
		rc.expectFrame(rawOpBinary, msg)
	})

	// Control frames between fragments are not part of the message.
	t.Run("pings do not count", func(t *testing.T) {
		rc := rawHandshake(t, addr)
		msg := bytes.Repeat([]byte("m"), 1024)
		var b []byte
		for i := 0; i < 4; i++ {
			op := rawOpCont
			if i == 0 {
				op = rawOpBinary
			}
			b = append(b, rawFrame(op, i == 3, msg[i*256:(i+1)*256], true)...)
			if i < 3 {
				b = append(b, rawFrame(rawOpPing, true, bytes.Repeat([]byte("p"), 125), true)...)
			}
		}
		rc.write(b)
		for range 3 {
			rc.expectFrame(rawOpPong, bytes.Repeat([]byte("p"), 125))
		}
		rc.expectFrame(rawOpBinary, msg)
		// The count starts again with the next message.
		rc.echo(rawOpText, msg)
	})
}
