package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/wsmill/wsmill/natsbus"
	"github.com/wsmill/wsmill/server"
)

// chatInstance is the demo's real wiring (withDemoChat, newMux) on a
// loopback port, with a bridge when natsURL is set.
func chatInstance(t *testing.T, natsURL string) (addr string, bus *natsbus.Bridge) {
	t.Helper()
	var srv *server.Server
	ch := &chat{maxText: defaultChatMax}
	srv, err := server.New(withDemoChat(server.Config{Handler: newMux(func() *server.Server { return srv }), Workers: 2}, ch))
	if err != nil {
		t.Fatal(err)
	}
	if natsURL != "" {
		bus, err = natsbus.New(srv, natsbus.Config{URL: natsURL, ReconnectWait: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ch.bus = bus
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if bus != nil {
			bus.Close()
		}
	})
	return ln.Addr().String(), bus
}

func inProcessNATS(t *testing.T) (*natsserver.Server, string) {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns, "nats://" + ns.Addr().String()
}

// dialChat joins; rawQuery is put in the URL as it is.
func dialChat(addr, rawQuery string) (*websocket.Conn, int, error) {
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/chat?"+rawQuery, nil)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	return c, status, err
}

func mustChat(t *testing.T, addr, room, name string) *websocket.Conn {
	t.Helper()
	c, status, err := dialChat(addr, "room="+room+"&name="+name)
	if err != nil {
		t.Fatalf("join %s as %s: status %d, %v", room, name, status, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readChat(t *testing.T, c *websocket.Conn) chatMessage {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("got message type %d; want text", typ)
	}
	var m chatMessage
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%q is not the chat's JSON: %v", b, err)
	}
	return m
}

// TestChatNames: room and name must be [A-Za-z0-9_-]{1,64}, given once
// each; anything else is refused with 400 before the upgrade, escaped or
// not, so no name can add a token or a wildcard to the room's subject.
func TestChatNames(t *testing.T) {
	addr, _ := chatInstance(t, "")
	for _, tt := range []struct {
		query  string
		status int
	}{
		{"room=lobby&name=ada", 101},
		{"room=a-B_9&name=" + strings.Repeat("x", 64), 101},
		{"room=lobby", 400},
		{"name=ada", 400},
		{"room=&name=ada", 400},
		{"room=lobby&name=ada&room=other", 400},
		{"room=a.b&name=ada", 400},
		{"room=*&name=ada", 400},
		{"room=>&name=ada", 400},
		{"room=%2A&name=ada", 400},
		{"room=%3E&name=ada", 400},
		{"room=lobby%2Eother&name=ada", 400},
		{"room=lobby&name=a.b", 400},
		{"room=lobby&name=%2A", 400},
		{"room=lob%20by&name=ada", 400},
		{"room=lob%00by&name=ada", 400},
		{"room=caf%C3%A9&name=ada", 400},
		{"room=" + strings.Repeat("r", 65) + "&name=ada", 400},
		{"room=%zz&name=ada", 400},
	} {
		c, status, _ := dialChat(addr, tt.query)
		if c != nil {
			c.Close()
		}
		if status != tt.status {
			t.Errorf("/chat?%s: status %d; want %d", tt.query, status, tt.status)
		}
	}
}

// TestChatLocal: without -nats a room spans its instance: the sender and
// every member get the message once, in the documented JSON, and members
// of another room get nothing.
func TestChatLocal(t *testing.T) {
	addr, _ := chatInstance(t, "")
	ada, bob := mustChat(t, addr, "lobby", "ada"), mustChat(t, addr, "lobby", "bob")
	eve := mustChat(t, addr, "other", "eve")
	time.Sleep(50 * time.Millisecond) // the joins run on the workers
	text := `hi "bob" <b>ü</b> \n`
	if err := ada.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		t.Fatal(err)
	}
	want := chatMessage{Type: "message", Room: "lobby", Name: "ada", Text: text}
	for _, c := range []*websocket.Conn{ada, bob} {
		if got := readChat(t, c); got != want {
			t.Errorf("got %+v; want %+v", got, want)
		}
	}
	eve.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, b, err := eve.ReadMessage(); err == nil {
		t.Errorf("another room got %q", b)
	}
}

// TestChatAcrossInstances: with -nats a message sent on A reaches the
// room's members on A (the sender once) and on B; a room named like a
// pattern cannot be joined, so it cannot listen in.
func TestChatAcrossInstances(t *testing.T) {
	ns, nurl := inProcessNATS(t)
	base := ns.NumSubscriptions()
	a, _ := chatInstance(t, nurl)
	b, _ := chatInstance(t, nurl)
	ada, bob := mustChat(t, a, "lobby", "ada"), mustChat(t, b, "lobby", "bob")
	eve := mustChat(t, b, "lobby2", "eve")
	for _, q := range []string{"room=*&name=m", "room=>&name=m", "room=lobby.x&name=m", "room=" + url.QueryEscape("lobby*") + "&name=m"} {
		if _, status, _ := dialChat(b, q); status != http.StatusBadRequest {
			t.Errorf("/chat?%s: status %d; want 400", q, status)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for ns.NumSubscriptions() != base+3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := ns.NumSubscriptions() - base; n != 3 {
		t.Fatalf("NATS holds %d subscriptions; want 3 (lobby on A and B, lobby2 on B)", n)
	}
	for _, text := range []string{"one", "two", "three"} {
		ada.WriteMessage(websocket.TextMessage, []byte(text))
	}
	for _, c := range []*websocket.Conn{ada, bob} {
		for _, text := range []string{"one", "two", "three"} {
			want := chatMessage{Type: "message", Room: "lobby", Name: "ada", Text: text}
			if got := readChat(t, c); got != want {
				t.Fatalf("got %+v; want %+v", got, want)
			}
		}
	}
	for _, c := range []*websocket.Conn{ada, eve} {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, m, err := c.ReadMessage(); err == nil {
			t.Errorf("got %q; want nothing more (a duplicate, or another room)", m)
		}
	}
}

// TestChatLimits: a binary message closes with 1003, a text over
// -chat-max with 1009.
func TestChatLimits(t *testing.T) {
	addr, _ := chatInstance(t, "")
	for _, tt := range []struct {
		typ  int
		msg  []byte
		code int
	}{
		{websocket.BinaryMessage, []byte{1, 2}, websocket.CloseUnsupportedData},
		{websocket.TextMessage, []byte(strings.Repeat("x", defaultChatMax+1)), websocket.CloseMessageTooBig},
	} {
		c := mustChat(t, addr, "lobby", "ada")
		c.WriteMessage(tt.typ, tt.msg)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _, err := c.ReadMessage()
		if !websocket.IsCloseError(err, tt.code) {
			t.Errorf("after %d bytes of type %d: %v; want close %d", len(tt.msg), tt.typ, err, tt.code)
		}
	}
}
