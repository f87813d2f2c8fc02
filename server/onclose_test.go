//go:build linux

package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
)

// member is what a chat room attaches to a connection in OnUpgrade.
type member struct{ name string }

// closeSeen is what OnClose could read of its connection.
type closeSeen struct {
	code  CloseCode
	name  string // of the *member Value returned; "" when none
	addr  netip.AddrPort
	send  SendResult
	close SendResult
}

// roomApp is a chat room's bookkeeping: every member is attached by
// OnUpgrade (?name=...) and looked up again in OnClose. The message "boom"
// panics; "stall" holds the worker until release is closed (a worker that
// is behind at shutdown).
type roomApp struct {
	opened  chan Conn
	closed  chan closeSeen
	stalled chan struct{}
	release chan struct{}
}

func newRoomApp() *roomApp {
	return &roomApp{
		opened:  make(chan Conn, 16),
		closed:  make(chan closeSeen, 16),
		stalled: make(chan struct{}),
		release: make(chan struct{}),
	}
}

func (a *roomApp) upgrade(r *Request) (any, int) {
	q, _ := url.ParseQuery(string(r.Query()))
	return &member{name: q.Get("name")}, 0
}

func (a *roomApp) OnOpen(c Conn) { a.opened <- c }

func (a *roomApp) OnMessage(c Conn, op Opcode, p []byte) {
	switch string(p) {
	case "boom":
		panic("boom")
	case "stall":
		close(a.stalled)
		<-a.release
	}
}

func (a *roomApp) OnClose(c Conn, code CloseCode) {
	seen := closeSeen{code: code, addr: c.RemoteAddr()}
	if m, ok := c.Value().(*member); ok {
		seen.name = m.name
	}
	seen.send = c.Send(OpText, []byte("after close"), Reliable)
	seen.close = c.Close(CloseNormal, "")
	a.closed <- seen
}

// waitMember waits for the OnClose of the member called name.
func (a *roomApp) waitMember(t *testing.T, name string) closeSeen {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case seen := <-a.closed:
			if seen.name == name {
				return seen
			}
			if seen.name == "" {
				t.Fatalf("an OnClose (code %d, addr %v) found no member: Value was not a *member", seen.code, seen.addr)
			}
		case <-deadline:
			t.Fatalf("no OnClose for %q within 5 s", name)
		}
	}
}

// roomDial connects a gorilla client as member name. rcvbuf > 0 shrinks
// its receive buffer (a client that does not read fills up quickly).
func roomDial(t *testing.T, addr, name string, rcvbuf int) (*gorilla.Conn, net.Conn) {
	t.Helper()
	var nc net.Conn
	d := gorilla.Dialer{
		HandshakeTimeout: rawTimeout,
		NetDialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := mbDialErr(a, rcvbuf, 0, 0)
			nc = c
			return c, err
		},
	}
	c, resp, err := d.Dial("ws://"+addr+"/ws?name="+name, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c, nc
}

// roomEnd is what a case of TestOnCloseSeesConnection may use to end the
// connection: the server, its address, the app, the client (the gorilla
// conn and its TCP socket) and the server's handle to it.
type roomEnd struct {
	s    *Server
	addr string
	app  *roomApp
	ws   *gorilla.Conn
	nc   net.Conn
	h    Conn
}

// TestOnCloseSeesConnection: whatever ends a connection, OnClose can still
// read what it carried (the value OnUpgrade attached and the peer's
// address); only sends (and Close) report Closed there. Before the fix, a
// connection that ended without a Close frame (1006) had both zero: detach
// marked it closed before calling OnClose, and the handle refused a closed
// conn, so a chat room kept every member whose network dropped (and
// c.Value().(*member) panicked). After a reset the address was lost even
// on a live conn: getpeername(2) fails with ENOTCONN.
func TestOnCloseSeesConnection(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cfg    func(*Config)
		rcvbuf int
		end    func(t *testing.T, e roomEnd)
		want   CloseCode
	}{
		{"peer close 1000", nil, 0, func(t *testing.T, e roomEnd) {
			msg := gorilla.FormatCloseMessage(gorilla.CloseNormalClosure, "")
			if err := e.ws.WriteControl(gorilla.CloseMessage, msg, time.Now().Add(rawTimeout)); err != nil {
				t.Fatal(err)
			}
		}, CloseNormal},
		{"FIN 1006", nil, 0, func(t *testing.T, e roomEnd) {
			e.nc.Close()
		}, CloseAbnormal},
		{"RST 1006", nil, 0, func(t *testing.T, e roomEnd) {
			e.nc.(*net.TCPConn).SetLinger(0)
			e.nc.Close()
		}, CloseAbnormal},
		{"panic 1011", nil, 0, func(t *testing.T, e roomEnd) {
			if err := e.ws.WriteMessage(gorilla.TextMessage, []byte("boom")); err != nil {
				t.Fatal(err)
			}
		}, CloseInternalError},
		{"overflow 1008", func(c *Config) { c.MaxOutbound = 16 << 10 }, 4096, func(t *testing.T, e roomEnd) {
			big := make([]byte, 4<<10)
			for i := 0; e.h.Send(OpBinary, big, Reliable) != Closed; i++ {
				if i > 10000 {
					t.Fatal("the queue never overflowed")
				}
			}
		}, ClosePolicyViolation},
		{"idle 1001", func(c *Config) { c.IdleTimeout, c.PushInterval = 100*time.Millisecond, 20*time.Millisecond }, 0,
			func(*testing.T, roomEnd) {}, CloseGoingAway},
		{"shutdown 1001", nil, 0, func(t *testing.T, e roomEnd) {
			go e.s.Shutdown(context.Background())
		}, CloseGoingAway},
		{"shutdown behind 1001", func(c *Config) { c.Workers = 1 }, 0, func(t *testing.T, e roomEnd) {
			// Another client holds the only worker: Shutdown's context
			// ends before it reaches this connection, and stop's goodbye
			// says 1001 on Shutdown's goroutine.
			other, _ := roomDial(t, e.addr, "staller", 0)
			<-e.app.opened
			if err := other.WriteMessage(gorilla.TextMessage, []byte("stall")); err != nil {
				t.Fatal(err)
			}
			<-e.app.stalled
			go func() {
				time.Sleep(100 * time.Millisecond)
				close(e.app.release)
			}()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := e.s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Shutdown: got %v; want context.Canceled", err)
			}
		}, CloseGoingAway},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := newRoomApp()
			cfg := rawConfig()
			cfg.App, cfg.OnUpgrade = app, app.upgrade
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			s, addr := startServer(t, cfg)
			ws, nc := roomDial(t, addr, "ann", tt.rcvbuf)
			h := <-app.opened
			tt.end(t, roomEnd{s: s, addr: addr, app: app, ws: ws, nc: nc, h: h})
			seen := app.waitMember(t, "ann")
			want := closeSeen{
				code:  tt.want,
				name:  "ann",
				addr:  netip.MustParseAddrPort(nc.LocalAddr().String()),
				send:  Closed,
				close: Closed,
			}
			if seen != want {
				t.Fatalf("in OnClose: got %+v; want %+v", seen, want)
			}
			rawWaitLive(t, s, 0, 5*time.Second)
			if v, a := h.Value(), h.RemoteAddr(); v != nil || a.IsValid() {
				t.Fatalf("after OnClose, once the connection is gone: Value %v, RemoteAddr %v; want nil and zero", v, a)
			}
		})
	}
}

// TestStaleHandleNeverSeesNextClient: a handle kept after its connection
// ended sees neither the value nor the address of the client that gets the
// same conn struct next (the kernel reuses the lowest free descriptor
// number), while that client's own handle sees its own.
func TestStaleHandleNeverSeesNextClient(t *testing.T) {
	app := newRoomApp()
	cfg := rawConfig()
	cfg.App, cfg.OnUpgrade = app, app.upgrade
	s, addr := startServer(t, cfg)
	reused := 0
	for i := range 20 {
		_, nc := roomDial(t, addr, "old", 0)
		old := <-app.opened
		nc.(*net.TCPConn).SetLinger(0)
		nc.Close()
		app.waitMember(t, "old")
		rawWaitLive(t, s, 0, 3*time.Second)
		_, nc2 := roomDial(t, addr, "new", 0)
		cur := <-app.opened
		if cur.c == old.c {
			reused++
		}
		if v, a := old.Value(), old.RemoteAddr(); v != nil || a.IsValid() {
			t.Fatalf("round %d: stale handle: Value %v, RemoteAddr %v; want nil and zero", i, v, a)
		}
		if m, ok := cur.Value().(*member); !ok || m.name != "new" {
			t.Fatalf("round %d: new handle: Value %v; want member \"new\"", i, cur.Value())
		}
		if got, want := cur.RemoteAddr().String(), nc2.LocalAddr().String(); got != want {
			t.Fatalf("round %d: new handle: RemoteAddr %s; want %s", i, got, want)
		}
		nc2.Close()
		app.waitMember(t, "new")
		rawWaitLive(t, s, 0, 3*time.Second)
	}
	if reused == 0 {
		t.Fatal("the conn struct was never reused: the test proved nothing")
	}
}

// TestRemoteAddrFamilies: the address kept from accept4 is the one
// getpeername(2) used to give, for IPv6 and for an IPv4 client of a
// dual-stack listener (its IPv4-mapped address), and it survives a reset.
func TestRemoteAddrFamilies(t *testing.T) {
	for _, tt := range []struct {
		name, listen, dial string
		want               func(local netip.AddrPort) netip.AddrPort
	}{
		{"IPv6", "[::1]:0", "::1", func(l netip.AddrPort) netip.AddrPort { return l }},
		{"IPv4 on dual stack", "[::]:0", "127.0.0.1", func(l netip.AddrPort) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16(l.Addr().As16()), l.Port())
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", tt.listen)
			if err != nil {
				t.Skipf("no %s listener here: %v", tt.listen, err)
			}
			app := newRoomApp()
			cfg := rawConfig()
			cfg.App, cfg.OnUpgrade = app, app.upgrade
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(serveListener(t, s, ln))
			_, nc := roomDial(t, net.JoinHostPort(tt.dial, port), "bob", 0)
			h := <-app.opened
			want := tt.want(netip.MustParseAddrPort(nc.LocalAddr().String()))
			if got := h.RemoteAddr(); got != want {
				t.Fatalf("RemoteAddr: got %v; want %v", got, want)
			}
			nc.(*net.TCPConn).SetLinger(0)
			nc.Close()
			if got := app.waitMember(t, "bob").addr; got != want {
				t.Fatalf("RemoteAddr in OnClose after a reset: got %v; want %v", got, want)
			}
		})
	}
}
