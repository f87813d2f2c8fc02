package wsclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lxzan/gws"
)

// testJSON is n bytes of the JSON an application pushes (prices), which
// compresses about four-fold.
func testJSON(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":"prices","items":[`)
	for i := 0; b.Len() < n-2; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"symbol":"SYM%03d","bid":%d.%02d,"ask":%d.%02d,"venue":"XNAS"}`, i, 100+i, i*7%100, 101+i, i*13%100)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// gorillaEcho is a gorilla/websocket server that greets and echoes, with
// compression as asked.
func gorillaEcho(t *testing.T, compress bool) string {
	up := websocket.Upgrader{EnableCompression: compress}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if c.WriteMessage(websocket.TextMessage, []byte(Greeting)) != nil {
			return
		}
		for {
			op, p, err := c.ReadMessage()
			if err != nil || c.WriteMessage(op, p) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnOpen(s *gws.Conn) { _ = s.WriteString(Greeting) }
func (gwsEcho) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = s.WriteMessage(m.Opcode, m.Bytes())
}

// gwsServer is a gws server with compression on, configured as gws's
// README shows for a server.
func gwsServer(t *testing.T) string {
	up := gws.NewUpgrader(gwsEcho{}, &gws.ServerOption{PermessageDeflate: gws.PermessageDeflate{Enabled: true}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go s.ReadLoop()
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func dialDeflate(t *testing.T, addr string) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), Options{Addr: addr, Deflate: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.ExpectGreeting(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDeflateEchoPeers sends compressed messages to real servers with
// compression on and checks that they come back compressed and equal,
// including a message big enough for the server to fragment its reply.
func TestDeflateEchoPeers(t *testing.T) {
	for _, tt := range []struct {
		name string
		addr func(*testing.T) string
		min  int // the server compresses replies of this size and up
	}{
		{"gorilla", func(t *testing.T) string { return gorillaEcho(t, true) }, 1},
		{"gws", gwsServer, 512}, // gws's default Threshold
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialDeflate(t, tt.addr(t))
			if !c.Deflate() {
				t.Fatal("deflate not negotiated")
			}
			big := bytes.Repeat(testJSON(1024), 300) // 300 KiB
			for i, msg := range [][]byte{testJSON(1024), []byte("small"), testJSON(128), big, testJSON(1024)} {
				for _, op := range []byte{OpText, OpBinary} {
					wire, err := c.WriteMessage(op, msg)
					if err != nil {
						t.Fatal(err)
					}
					c.NC.SetReadDeadline(time.Now().Add(10 * time.Second))
					gop, p, err := c.ReadMessage()
					if err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
					if gop != op || !bytes.Equal(p, msg) {
						t.Fatalf("message %d: got op %d, %d bytes; want op %d, %d bytes, equal", i, gop, len(p), op, len(msg))
					}
					if len(msg) >= 1024 {
						if wire >= len(msg)/2 {
							t.Errorf("message %d sent as %d bytes on the wire for %d; want compressed", i, wire, len(msg))
						}
					}
					if len(msg) >= tt.min && len(msg) >= 1024 && c.LastWire() >= len(msg)/2 {
						t.Errorf("message %d came back as %d bytes on the wire for %d; want compressed", i, c.LastWire(), len(msg))
					}
				}
			}
		})
	}
}

// TestDeflateDeclined: a server without compression declines the offer,
// and the connection runs plain.
func TestDeflateDeclined(t *testing.T) {
	c := dialDeflate(t, gorillaEcho(t, false))
	if c.Deflate() {
		t.Fatal("deflate negotiated with a server that has it off")
	}
	msg := testJSON(1024)
	wire, err := c.WriteMessage(OpText, msg)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(msg) + 8; wire != want { // 2 + 2 (16-bit length) + 4 (mask)
		t.Fatalf("plain message of %d bytes: %d on the wire; want %d", len(msg), wire, want)
	}
	_, p, err := c.ReadMessage()
	if err != nil || !bytes.Equal(p, msg) {
		t.Fatalf("echo: %v, equal %v", err, bytes.Equal(p, msg))
	}
	if want := len(msg) + 4; c.LastWire() != want { // unmasked from the server
		t.Fatalf("reply on the wire %d; want %d", c.LastWire(), want)
	}
}

func TestCheckExtensions(t *testing.T) {
	for _, tt := range []struct {
		name    string
		lines   []string
		offered bool
		on      bool
		err     string // substring; "" for none
	}{
		{"none, not offered", nil, false, false, ""},
		{"declined", nil, true, false, ""},
		{"declined, empty line", []string{""}, true, false, ""},
		{"gorilla's answer", []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, true, true, ""},
		{"wsmill's answer", []string{"permessage-deflate;server_no_context_takeover;client_no_context_takeover"}, true, true, ""},
		{"server takeover only off", []string{"permessage-deflate; server_no_context_takeover"}, true, true, ""},
		{"server window bits", []string{"permessage-deflate; server_no_context_takeover; server_max_window_bits=10"}, true, true, ""},
		{"quoted window bits", []string{`permessage-deflate; server_no_context_takeover; server_max_window_bits="15"`}, true, true, ""},
		{"case", []string{"Permessage-Deflate; Server_No_Context_Takeover"}, true, true, ""},
		{"not offered", []string{"permessage-deflate; server_no_context_takeover"}, false, false, "none was offered"},
		{"server takes over", []string{"permessage-deflate; client_no_context_takeover"}, true, false, "without server_no_context_takeover"},
		{"bare", []string{"permessage-deflate"}, true, false, "without server_no_context_takeover"},
		{"client window bits", []string{"permessage-deflate; server_no_context_takeover; client_max_window_bits=12"}, true, false, "not offered"},
		{"bad window bits", []string{"permessage-deflate; server_no_context_takeover; server_max_window_bits=7"}, true, false, "not 8..15"},
		{"leading zero", []string{"permessage-deflate; server_no_context_takeover; server_max_window_bits=09"}, true, false, "not 8..15"},
		{"window bits no value", []string{"permessage-deflate; server_no_context_takeover; server_max_window_bits"}, true, false, "not 8..15"},
		{"twice", []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, true, false, "twice"},
		{"value on flag", []string{"permessage-deflate; server_no_context_takeover=1"}, true, false, "with a value"},
		{"unknown parameter", []string{"permessage-deflate; server_no_context_takeover; x=1"}, true, false, "unknown parameter"},
		{"other extension", []string{"x-webkit-deflate-frame"}, true, false, "only permessage-deflate"},
		{"two answers", []string{"permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"}, true, false, "only permessage-deflate"},
		{"two in one line", []string{"permessage-deflate; server_no_context_takeover, permessage-deflate"}, true, false, "only permessage-deflate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			on, err := checkExtensions(tt.lines, tt.offered)
			if tt.err == "" {
				if err != nil || on != tt.on {
					t.Fatalf("got %v, %v; want %v, nil", on, err, tt.on)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, %v; want an error with %q", on, err, tt.err)
			}
		})
	}
}

// reader is a Conn that reads the given bytes, with deflate negotiated
// or not.
func reader(b []byte, deflate bool) *Conn {
	c := &Conn{BR: bufio.NewReader(bytes.NewReader(b))}
	if deflate {
		c.z = &deflateState{on: true}
	}
	return c
}

func compressed(t *testing.T, p []byte) []byte {
	t.Helper()
	var z zbuf
	b, err := z.compress(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadCompressedFrames checks the RSV1 rules of [RFC7692 6] and a
// compressed message fragmented with a ping in between.
func TestReadCompressedFrames(t *testing.T) {
	msg := testJSON(1024)
	z := compressed(t, msg)
	one := AppendHeader(nil, 0x80|rsv1|OpText, uint64(len(z)), false)
	one = append(one, z...)
	// The same message in three frames, a ping between the first two.
	frag := AppendHeader(nil, rsv1|OpText, 10, false)
	frag = append(frag, z[:10]...)
	frag = AppendFrame(frag, OpPing, []byte("p"), false)
	frag = AppendHeader(frag, OpContinuation, 20, false)
	frag = append(frag, z[10:30]...)
	frag = AppendHeader(frag, 0x80|OpContinuation, uint64(len(z)-30), false)
	frag = append(frag, z[30:]...)
	for _, tt := range []struct {
		name    string
		in      []byte
		deflate bool
		err     string
		wire    int // LastWire when there is no error
	}{
		{"one frame", one, true, "", len(one)},
		{"fragmented with a ping", frag, true, "", len(frag) - 3}, // the ping frame is 3 bytes
		{"not negotiated", one, false, "RSV bits", 0},
		{"RSV2", []byte{0x80 | 0x20 | OpText, 0}, true, "RSV bits", 0},
		{"RSV1 on a ping", AppendHeader(nil, 0x80|rsv1|OpPing, 0, false), true, "RSV1 on a frame of opcode 0x9", 0},
		{"RSV1 on a continuation", append(AppendHeader(nil, OpText, 0, false), AppendHeader(nil, 0x80|rsv1|OpContinuation, 0, false)...), true, "RSV1 on a frame of opcode 0x0", 0},
		{"not deflate", append(AppendHeader(nil, 0x80|rsv1|OpText, 4, false), 0xff, 0xff, 0xff, 0xff), true, "does not inflate", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := reader(tt.in, tt.deflate)
			c.NC = discard{}
			op, p, err := c.ReadMessage()
			if tt.err == "" {
				if err != nil || op != OpText || !bytes.Equal(p, msg) {
					t.Fatalf("got op %d, %d bytes, %v; want op 1, the %d bytes sent", op, len(p), err, len(msg))
				}
				if c.LastWire() != tt.wire {
					t.Fatalf("LastWire %d; want %d", c.LastWire(), tt.wire)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v; want an error with %q", err, tt.err)
			}
		})
	}
}

// TestInflateLimit: a message that inflates past MaxFrame is refused.
func TestInflateLimit(t *testing.T) {
	z := compressed(t, make([]byte, MaxFrame+1)) // ~16 KiB of compressed zeros
	c := reader(append(AppendHeader(nil, 0x80|rsv1|OpBinary, uint64(len(z)), false), z...), true)
	if _, _, err := c.ReadMessage(); err == nil || !strings.Contains(err.Error(), "exceeds the client's limit") {
		t.Fatalf("got %v; want the limit error", err)
	}
	if cap(c.z.in) > MaxFrame {
		t.Fatalf("inflate buffer grew to %d; want at most %d", cap(c.z.in), MaxFrame)
	}
	z = compressed(t, make([]byte, MaxFrame))
	c = reader(append(AppendHeader(nil, 0x80|rsv1|OpBinary, uint64(len(z)), false), z...), true)
	if _, p, err := c.ReadMessage(); err != nil || len(p) != MaxFrame {
		t.Fatalf("message of exactly the limit: %d bytes, %v", len(p), err)
	}
}

func TestInflateInvalidIsErrInflate(t *testing.T) {
	c := reader(append(AppendHeader(nil, 0x80|rsv1|OpBinary, 3, false), 0x07, 0x00, 0x00), true)
	if _, _, err := c.ReadMessage(); !errors.Is(err, ErrInflate) {
		t.Fatalf("got %v; want ErrInflate", err)
	}
}

// discard is the write side of a Conn that only reads (pongs go nowhere).
type discard struct{ net.Conn }

func (discard) Write(p []byte) (int, error) { return len(p), nil }
