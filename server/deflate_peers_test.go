package server

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
)

// permessage-deflate against real clients: gorilla/websocket with
// EnableCompression, coder/websocket in both of its compression modes.
// Each echoes messages that compress well (and so go compressed both
// ways), a small one that goes plain, and a large one that the client
// fragments, and the server's counters prove what was compressed.

// deflateJSON is a typical 1 KiB JSON message of an application: a list of
// records with repeated keys.
func deflateJSON(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"type":"prices","items":[`)
	for i := 0; b.Len() < n-64; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"symbol":"SYM%03d","bid":%d.%02d,"ask":%d.%02d,"venue":"XNAS"}`, i, 100+i, i*7%100, 101+i, i*13%100)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

const answerNoTakeover = "permessage-deflate;server_no_context_takeover;client_no_context_takeover"

func TestDeflateGorilla(t *testing.T) {
	s, addr := startServer(t, Config{Deflate: true, App: echoApp{}}) // no time push
	d := gorilla.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	c, resp, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != answerNoTakeover {
		t.Fatalf("Sec-WebSocket-Extensions = %q; want %q", got, answerNoTakeover)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "Hi Client!" {
		t.Fatalf("greeting: %q, %v", p, err)
	}
	big := bytes.Repeat(deflateJSON(1024), 200) // fragmented by gorilla's 4 KiB writer
	for i, msg := range [][]byte{deflateJSON(1024), []byte("small"), deflateJSON(1024), big} {
		if err := c.WriteMessage(gorilla.TextMessage, msg); err != nil {
			t.Fatal(err)
		}
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(p, msg) {
			t.Fatalf("message %d: echo of %d bytes differs (%d bytes)", i, len(msg), len(p))
		}
	}
	// gorilla compresses every message (even "small"); the server sends
	// "small" plain (under DeflateMin) and the three others compressed.
	waitFor(t, 2*time.Second, "4 messages inflated and 3 compressed", func() bool {
		st := s.Stats()
		return st.DeflateIn == 4 && st.DeflateOut == 3
	})
}

func TestDeflateCoder(t *testing.T) {
	for _, tt := range []struct {
		name string
		mode coder.CompressionMode
	}{
		{"no-context-takeover", coder.CompressionNoContextTakeover},
		// coder offers plain "permessage-deflate" and would keep its window
		// between messages; the answer's client_no_context_takeover makes it
		// reset it for every message, which a stateless inflater needs: a
		// second message referring to the first would not inflate (1007).
		{"context-takeover", coder.CompressionContextTakeover},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, addr := startServer(t, Config{Deflate: true, App: echoApp{}}) // no time push
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := coder.Dial(ctx, "ws://"+addr+"/ws", &coder.DialOptions{
				CompressionMode: tt.mode, CompressionThreshold: 64,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != answerNoTakeover {
				t.Fatalf("Sec-WebSocket-Extensions = %q; want %q", got, answerNoTakeover)
			}
			if _, p, err := c.Read(ctx); err != nil || string(p) != "Hi Client!" {
				t.Fatalf("greeting: %q, %v", p, err)
			}
			// The same message three times: with context takeover the
			// second and third would be a few back-references to the first.
			msg := deflateJSON(1024)
			for i := range 3 {
				if err := c.Write(ctx, coder.MessageText, msg); err != nil {
					t.Fatal(err)
				}
				_, p, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(p, msg) {
					t.Fatalf("message %d: echo differs: got %d bytes %.60q", i, len(p), p)
				}
			}
			// The counters move just after the write the client has read.
			waitFor(t, 2*time.Second, "3 messages inflated and 3 compressed", func() bool {
				st := s.Stats()
				return st.DeflateIn == 3 && st.DeflateOut == 3 && st.InflateInvalid == 0
			})
			if err := c.Close(coder.StatusNormalClosure, ""); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestDeflateOff: without Config.Deflate the offer is declined and
// nothing is compressed.
func TestDeflateOff(t *testing.T) {
	// No time push: one may land between the greeting and the echo (CI
	// read "2026-12-07 ..." where the echo was due once).
	_, addr := startServer(t, Config{App: echoApp{}})
	d := gorilla.Dialer{HandshakeTimeout: 5 * time.Second, EnableCompression: true}
	c, resp, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "" {
		t.Fatalf("Sec-WebSocket-Extensions = %q; want none", got)
	}
	msg := deflateJSON(1024)
	if err := c.WriteMessage(gorilla.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "Hi Client!" {
		t.Fatalf("greeting: %q, %v", p, err)
	}
	if _, p, err := c.ReadMessage(); err != nil || !bytes.Equal(p, msg) {
		t.Fatalf("echo: %.40q, %v", p, err)
	}
}
