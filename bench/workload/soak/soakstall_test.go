package soak

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

// stallPeer is a WebSocket server on loopback that answers the upgrade,
// sends the greeting, then reads and drops whatever arrives; after delay
// it ends the connection with end (never when end is nil). It sends
// nothing after the greeting, so what the stall client sees is the end
// alone.
func stallPeer(t *testing.T, delay time.Duration, end func(*net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, nc)
			go func() {
				br := bufio.NewReader(nc)
				tp := textproto.NewReader(br)
				if _, err := tp.ReadLine(); err != nil {
					return
				}
				h, err := tp.ReadMIMEHeader()
				if err != nil {
					return
				}
				sum := sha1.Sum([]byte(h.Get("Sec-WebSocket-Key") + wsclient.GUID))
				resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
					base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
				if _, err := nc.Write(wsclient.AppendFrame([]byte(resp), wsclient.OpText, []byte(wsclient.Greeting), false)); err != nil {
					return
				}
				go io.Copy(io.Discard, br)
				if end != nil {
					time.Sleep(delay)
					end(nc.(*net.TCPConn))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestStallSeesTheServerLetGo runs the stall behaviour against peers that
// reset, half-close, reset too late, or never let go, and checks what the
// client made of it from its socket's state alone.
func TestStallSeesTheServerLetGo(t *testing.T) {
	reset := func(c *net.TCPConn) { c.SetLinger(0); c.Close() }
	fin := func(c *net.TCPConn) { c.CloseWrite() }
	tests := []struct {
		name  string
		delay time.Duration
		end   func(*net.TCPConn)
		kind  outcomeKind
		how   string
	}{
		{"reset", 100 * time.Millisecond, reset, kindServer, "RST while stalled"},
		{"FIN", 100 * time.Millisecond, fin, kindServer, "FIN while stalled"},
		{"reset late", 1500 * time.Millisecond, reset, kindServer, "RST while stalled, later than 1s"},
		{"never", 0, nil, kindGaveUp, "still ESTABLISHED when the client gave up (the server never let go)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := stallPeer(t, tt.delay, tt.end)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s := &soaker{spec: fleet.Spec{Addr: addr, DialTimeout: 2 * time.Second}, win: ctx, end: time.Now().Add(10 * time.Second),
				ss: &soakSpec{Hold: 2500 * time.Millisecond, CloseTimeout: 300 * time.Millisecond, StallSlack: 700 * time.Millisecond, StallBurst: 600_000}}
			start := time.Now()
			o := s.stall(0)
			if o.kind != tt.kind || o.how != tt.how {
				t.Fatalf("got kind %d %q; want kind %d %q", o.kind, o.how, tt.kind, tt.how)
			}
			if o.late != strings.Contains(tt.how, "later") {
				t.Errorf("late: got %v", o.late)
			}
			if tt.end == nil {
				if d := time.Since(start); d < s.ss.Hold {
					t.Errorf("gave up after %v; want at least -hold %v", d, s.ss.Hold)
				}
			} else if o.after < tt.delay/2 || o.after > tt.delay+time.Second { // the peer's clock starts at its greeting, ours after it
				t.Errorf("ended after %v; want about %v", o.after, tt.delay)
			}
		})
	}
}
