package server

// RFC 7692 (permessage-deflate) conformance, in the style of
// conformance_test.go: the raw client builds every frame byte by byte and
// compresses with the standard library's compress/flate (an encoder of its
// own, not the server's), and every case asserts the exact answer header,
// echo or Close code.
//
//	Section                               Test
//	5, 7.1 negotiation                    TestRFC7692_7_1_Negotiation: offers accepted
//	                                      (Chromium's client_max_window_bits, quoted
//	                                      values, the first valid of several) and declined
//	                                      (unknown, invalid, repeated parameters; a window
//	                                      the server does not limit itself to)
//	6, 6.1 framing (RSV1)                 TestRFC7692_6_Framing: RSV1 only on a first
//	                                      frame: on a continuation, a control frame, or
//	                                      without negotiation -> 1002; fragmented
//	                                      compressed messages with pings between, whole and
//	                                      chopped; plain messages on a deflate connection
//	6.2, 7.2.2 decompression              TestRFC7692_7_2_Decompression: invalid stream,
//	                                      truncated stream, invalid UTF-8 after inflating
//	                                      -> 1007; a final block; an empty message
//	10.4 of 6455 (bombs)                  TestRFC7692_Bomb: inflating past MaxMessage ->
//	                                      1009; exactly MaxMessage echoed

import (
	"bytes"
	"compress/flate"
	"io"
	"strings"
	"testing"
	"time"
)

const rawOfferHeader = "Sec-WebSocket-Extensions: "

// rawDeflate compresses p as a permessage-deflate sender does: DEFLATE,
// a sync flush, the final 0x00 0x00 0xff 0xff removed ([RFC7692 7.2.1]).
func rawDeflate(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(p)
	w.Flush()
	z := b.Bytes()
	if !bytes.HasSuffix(z, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("flush did not end with 00 00 ff ff")
	}
	return z[:len(z)-4]
}

// rawInflate is the client's side of [RFC7692 7.2.2].
func rawInflate(t testing.TB, z []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	p, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflating the server's frame: %v", err)
	}
	return p
}

// rawDeflateHandshake upgrades with the given extension offer and reads
// the greeting; it returns the 101's Sec-WebSocket-Extensions.
func rawDeflateHandshake(t testing.TB, addr, offer string) (*rawConn, string) {
	t.Helper()
	rc := rawDial(t, addr)
	rc.write([]byte(rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer, rawOfferHeader+offer)))
	resp := rc.expectUpgraded(rawKey)
	rc.expectGreeting()
	return rc, resp.get("sec-websocket-extensions")
}

// expectZ reads one final data frame with op and checks that it is
// compressed (RSV1) or not, as z says, and carries payload.
func (rc *rawConn) expectZ(op byte, payload []byte, z bool) {
	rc.t.Helper()
	f, err := rc.rawRead(rawTimeout)
	for err == nil && rawIsTimePush(f) { // a push may come at any moment, as in next
		f, err = rc.rawRead(rawTimeout)
	}
	if err != nil {
		rc.t.Fatalf("reading a frame: %v", err)
	}
	if f.op != op || !f.fin || f.masked {
		rc.t.Fatalf("frame: got %v; want a final unmasked op=%#x", f, op)
	}
	switch {
	case z && f.rsv != 4:
		rc.t.Fatalf("frame %v: RSV %d; want 4 (RSV1: compressed)", f, f.rsv)
	case !z && f.rsv != 0:
		rc.t.Fatalf("frame %v: RSV %d; want 0 (plain)", f, f.rsv)
	}
	got := f.payload
	if z {
		got = rawInflate(rc.t, f.payload)
	}
	if !bytes.Equal(got, payload) {
		rc.t.Fatalf("payload: got %d bytes %q; want %d bytes %q", len(got), rawTrunc(got), len(payload), rawTrunc(payload))
	}
}

func deflateConfig() Config {
	cfg := rawConfig()
	cfg.Deflate = true
	return cfg
}

func TestRFC7692_7_1_Negotiation(t *testing.T) {
	_, addr := startServer(t, deflateConfig())
	const (
		yes  = "permessage-deflate;server_no_context_takeover;client_no_context_takeover"
		bits = yes + ";server_max_window_bits=15"
	)
	for _, tt := range []struct{ name, offer, want string }{
		{"bare", "permessage-deflate", yes},
		// What Chromium sends: client_max_window_bits without a value
		// says the client can limit its window; the server may leave it
		// out of the answer ([RFC7692 7.1.2.2]).
		{"Chromium", "permessage-deflate; client_max_window_bits", yes},
		{"client_max_window_bits=10", "permessage-deflate; client_max_window_bits=10", yes},
		{"quoted value", `permessage-deflate; client_max_window_bits="10"`, yes},
		{"gorilla's offer", "permessage-deflate; server_no_context_takeover; client_no_context_takeover", yes},
		// [RFC7692 7.1.2.1]: accepted by answering with the same value.
		{"server_max_window_bits=15", "permessage-deflate; server_max_window_bits=15", bits},
		{"first valid offer wins", "permessage-deflate; x=1, permessage-deflate; client_max_window_bits", yes},
		{"case of the name", "PerMessage-Deflate", yes},
		// [RFC7692 7.1]: a server MUST decline an offer with an unknown
		// parameter, an invalid value, or a parameter twice.
		{"unknown parameter", "permessage-deflate; foo", ""},
		{"server_max_window_bits=10 (not supported)", "permessage-deflate; server_max_window_bits=10", ""},
		{"server_max_window_bits without value", "permessage-deflate; server_max_window_bits", ""},
		{"client_max_window_bits=16", "permessage-deflate; client_max_window_bits=16", ""},
		{"client_max_window_bits=7", "permessage-deflate; client_max_window_bits=7", ""},
		{"client_max_window_bits=08 (leading zero)", "permessage-deflate; client_max_window_bits=08", ""},
		{"client_max_window_bits=x", "permessage-deflate; client_max_window_bits=x", ""},
		{"client_no_context_takeover with value", "permessage-deflate; client_no_context_takeover=1", ""},
		{"repeated parameter", "permessage-deflate; server_no_context_takeover; server_no_context_takeover", ""},
		{"other extension", "x-webkit-deflate-frame", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc, got := rawDeflateHandshake(t, addr, tt.offer)
			if got != tt.want {
				t.Fatalf("Sec-WebSocket-Extensions: got %q; want %q", got, tt.want)
			}
			// Declined: RSV1 is a protocol error ([RFC6455 5.2]).
			if tt.want == "" {
				rc.write(rawFrameB0(0x80|0x40|rawOpText, rawDeflate(t, []byte("hello")), true))
				rc.expectClose(1002)
			}
		})
	}
}

func TestRFC7692_6_Framing(t *testing.T) {
	s, addr := startServer(t, deflateConfig())
	msg := deflateJSON(1024)
	z := rawDeflate(t, msg)
	open := func(t *testing.T) *rawConn {
		rc, ext := rawDeflateHandshake(t, addr, "permessage-deflate; client_max_window_bits")
		if ext == "" {
			t.Fatal("deflate not negotiated")
		}
		return rc
	}

	t.Run("compressed echo", func(t *testing.T) {
		rc := open(t)
		for range 3 { // no context is taken over: the same message each time
			rc.write(rawFrameB0(0x80|0x40|rawOpText, z, true))
			rc.expectZ(rawOpText, msg, true)
		}
		rc.write(rawFrameB0(0x80|0x40|rawOpBinary, z, true))
		rc.expectZ(rawOpBinary, msg, true)
	})
	t.Run("small message answered plain", func(t *testing.T) {
		rc := open(t)
		rc.write(rawFrameB0(0x80|0x40|rawOpText, rawDeflate(t, []byte("hello")), true))
		rc.expectZ(rawOpText, []byte("hello"), false)
	})
	t.Run("plain message on a deflate connection", func(t *testing.T) {
		// [RFC7692 6]: a message without RSV1 is not compressed.
		rc := open(t)
		rc.write(rawFrame(rawOpText, true, []byte("plain"), true))
		rc.expectZ(rawOpText, []byte("plain"), false)
		rc.write(rawFrame(rawOpText, true, msg, true))
		rc.expectZ(rawOpText, msg, true) // it is the server's choice to compress its answer
	})
	t.Run("fragmented with pings between", func(t *testing.T) {
		rc := open(t)
		a, b, c := z[:len(z)/3], z[len(z)/3:2*len(z)/3], z[2*len(z)/3:]
		rc.write(rawFrameB0(0x40|rawOpText, a, true)) // RSV1 on the first frame only
		rc.write(rawFrame(rawOpPing, true, []byte("p1"), true))
		rc.expectZ(rawOpPong, []byte("p1"), false)
		rc.write(rawFrame(rawOpCont, false, b, true))
		rc.write(rawFrame(rawOpPing, true, []byte("p2"), true))
		rc.expectZ(rawOpPong, []byte("p2"), false)
		rc.write(rawFrame(rawOpCont, true, c, true))
		rc.expectZ(rawOpText, msg, true)
	})
	t.Run("fragmented and chopped", func(t *testing.T) {
		rc := open(t)
		var all []byte
		all = append(all, rawFrameB0(0x40|rawOpText, z[:100], true)...)
		all = append(all, rawFrame(rawOpCont, false, z[100:200], true)...)
		all = append(all, rawFrame(rawOpCont, true, z[200:], true)...)
		rc.writeChopped(all, 1, 7, 0)
		rc.expectZ(rawOpText, msg, true)
	})
	t.Run("large frame in pieces", func(t *testing.T) {
		// A frame that arrives over several reads (held in a buffer).
		big := bytes.Repeat(msg, 300)
		rc := open(t)
		rc.writeChopped(rawFrameB0(0x80|0x40|rawOpText, rawDeflate(t, big), true), 1000, 4000, time.Millisecond)
		rc.expectZ(rawOpText, big, true)
	})
	for _, tt := range []struct {
		name   string
		writes [][]byte
	}{
		// [RFC7692 6.1]: RSV1 is set only on the first frame of a message.
		{"RSV1 on a continuation", [][]byte{rawFrameB0(0x40|rawOpText, z[:10], true), rawFrameB0(0x80|0x40|rawOpCont, z[10:], true)}},
		{"RSV1 on a ping", [][]byte{rawFrameB0(0x80|0x40|rawOpPing, nil, true)}},
		{"RSV1 on a pong", [][]byte{rawFrameB0(0x80|0x40|rawOpPong, nil, true)}},
		{"RSV1 on a close", [][]byte{rawFrameB0(0x80|0x40|rawOpClose, rawCloseBody(1000, ""), true)}},
		// RSV2 and RSV3 mean nothing to permessage-deflate ([RFC6455 5.2]).
		{"RSV2", [][]byte{rawFrameB0(0x80|0x20|rawOpText, z, true)}},
		{"RSV3", [][]byte{rawFrameB0(0x80|0x10|rawOpText, z, true)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := open(t)
			for _, w := range tt.writes {
				rc.write(w)
			}
			rc.expectClose(1002)
		})
	}
	t.Run("RSV1 without negotiation", func(t *testing.T) {
		rc := rawHandshake(t, addr) // no offer
		rc.write(rawFrameB0(0x80|0x40|rawOpText, z, true))
		rc.expectClose(1002)
	})
	if st := s.Stats(); st.DeflateIn == 0 {
		t.Errorf("DeflateIn = 0; want the compressed messages counted")
	}
}

func TestRFC7692_7_2_Decompression(t *testing.T) {
	s, addr := startServer(t, deflateConfig())
	msg := deflateJSON(1024)
	z := rawDeflate(t, msg)
	open := func(t *testing.T) *rawConn {
		rc, _ := rawDeflateHandshake(t, addr, "permessage-deflate")
		return rc
	}
	// A final block is allowed in a message (the sender used Close, not
	// Flush): the message ends there.
	t.Run("final block", func(t *testing.T) {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, flate.BestSpeed)
		w.Write(msg)
		w.Close()
		rc := open(t)
		rc.write(rawFrameB0(0x80|0x40|rawOpText, b.Bytes(), true))
		rc.expectZ(rawOpText, msg, true)
	})
	t.Run("empty message", func(t *testing.T) {
		rc := open(t)
		rc.write(rawFrameB0(0x80|0x40|rawOpText, []byte{0x00}, true))
		rc.expectZ(rawOpText, nil, false)
	})
	// An invalid stream fails the connection with 1007: the payload is
	// not data of its message's type ([RFC6455 7.4.1]; [RFC7692 6.2]: the
	// receiver decompresses before it handles the message).
	for _, tt := range []struct {
		name    string
		payload []byte
	}{
		{"invalid stream", []byte{0xff, 0xff, 0xff, 0xff, 0xff}},
		{"reserved block type", []byte{0x07, 0x00}},
		{"truncated stream", z[:len(z)/2]},
		{"invalid UTF-8 once inflated", rawDeflate(t, []byte("caf\xc3\x28 and more text to make it long enough"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rc := open(t)
			rc.write(rawFrameB0(0x80|0x40|rawOpText, tt.payload, true))
			rc.expectClose(1007)
		})
	}
	if st := s.Stats(); st.InflateInvalid < 3 {
		t.Errorf("InflateInvalid = %d; want at least 3", st.InflateInvalid)
	}
}

func TestRFC7692_Bomb(t *testing.T) {
	cfg := deflateConfig()
	cfg.MaxMessage = 64 << 10
	s, addr := startServer(t, cfg)
	exact := []byte(strings.Repeat("a", cfg.MaxMessage))
	t.Run("exactly MaxMessage inflated", func(t *testing.T) {
		rc, _ := rawDeflateHandshake(t, addr, "permessage-deflate")
		rc.write(rawFrameB0(0x80|0x40|rawOpText, rawDeflate(t, exact), true))
		rc.expectZ(rawOpText, exact, true)
	})
	t.Run("one byte more", func(t *testing.T) {
		rc, _ := rawDeflateHandshake(t, addr, "permessage-deflate")
		rc.write(rawFrameB0(0x80|0x40|rawOpText, rawDeflate(t, append(exact, 'a')), true))
		rc.expectClose(1009)
	})
	t.Run("16 MiB of zeros in 16 KiB", func(t *testing.T) {
		bomb := rawDeflate(t, make([]byte, 16<<20))
		if len(bomb) > 64<<10 {
			t.Fatalf("bomb is %d bytes", len(bomb))
		}
		rc, _ := rawDeflateHandshake(t, addr, "permessage-deflate")
		rc.write(rawFrameB0(0x80|0x40|rawOpBinary, bomb, true))
		rc.expectClose(1009)
	})
	t.Run("fragmented bomb", func(t *testing.T) {
		bomb := rawDeflate(t, make([]byte, 16<<20))
		rc, _ := rawDeflateHandshake(t, addr, "permessage-deflate")
		rc.write(rawFrameB0(0x40|rawOpBinary, bomb[:len(bomb)/2], true))
		rc.write(rawFrame(rawOpCont, true, bomb[len(bomb)/2:], true))
		rc.expectClose(1009)
	})
	if st := s.Stats(); st.InflateTooBig != 3 {
		t.Errorf("InflateTooBig = %d; want 3", st.InflateTooBig)
	}
	waitFor(t, 2*time.Second, "held buffers returned", func() bool { return s.Stats().Buffered == 0 })
}
