package server

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
)

// TestServeSeveralListeners: one Server on two ports, then a third added
// while it runs. Clients on every port (gorilla/websocket) get the same
// engine: the greeting, their echo, one Broadcast reaching all of them;
// MaxConns counts them together; Shutdown sends every client Close 1001,
// returns every Serve with ErrServerClosed and closes every listener.
func TestServeSeveralListeners(t *testing.T) {
	const perPort = 3
	s, err := New(Config{App: echoApp{}, MaxConns: 3*perPort + 1})
	if err != nil {
		t.Fatal(err)
	}
	var lns []net.Listener
	served := make(chan error, 3)
	serve := func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		go func() { served <- s.Serve(ln) }()
	}
	serve()
	serve()

	var clients []*gorilla.Conn
	dial := func(ln net.Listener) {
		t.Helper()
		d := gorilla.Dialer{HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws://"+ln.Addr().String()+"/ws", nil)
		if err != nil {
			t.Fatalf("dial %s: %v", ln.Addr(), err)
		}
		resp.Body.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		clients = append(clients, c)
		expectText(t, c, "Hi Client!")
		msg := "echo via " + ln.Addr().String()
		if err := c.WriteMessage(gorilla.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		expectText(t, c, msg)
	}
	for _, ln := range lns {
		for range perPort {
			dial(ln)
		}
	}
	serve() // a listener added while the others serve
	for range perPort {
		dial(lns[2])
	}
	if got := s.Stats().Open; got != 3*perPort {
		t.Fatalf("Open = %d; want %d", got, 3*perPort)
	}

	// MaxConns is the Server's, whichever port a client comes in by.
	dial(lns[0])
	d := gorilla.Dialer{HandshakeTimeout: 5 * time.Second}
	if c, resp, err := d.Dial("ws://"+lns[1].Addr().String()+"/ws", nil); err == nil {
		c.Close()
		t.Fatal("upgrade past MaxConns on another port succeeded")
	} else if resp == nil || resp.StatusCode != 503 {
		t.Fatalf("upgrade past MaxConns: %v; want 503", err)
	}

	if n := s.Broadcast(NewFrame(OpText, []byte("to all")), Reliable).Sent(); n != len(clients) {
		t.Errorf("Broadcast reached %d; want %d", n, len(clients))
	}
	for _, c := range clients {
		expectText(t, c, "to all")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range lns {
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v; want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a Serve did not return after Shutdown")
		}
	}
	for _, c := range clients {
		_, _, err := c.ReadMessage()
		var ce *gorilla.CloseError
		if !errors.As(err, &ce) || ce.Code != int(CloseGoingAway) {
			t.Errorf("client read %v after Shutdown; want close 1001", err)
		}
		c.Close()
	}
	for _, ln := range lns {
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept on %s after Shutdown: %v; want net.ErrClosed", ln.Addr(), err)
		}
	}
	if err := s.Serve(lns[0]); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v; want ErrServerClosed", err)
	}
}

func expectText(t *testing.T, c *gorilla.Conn, want string) {
	t.Helper()
	typ, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v; want %q", err, want)
	}
	if typ != gorilla.TextMessage || string(p) != want {
		t.Fatalf("got %d %q; want text %q", typ, p, want)
	}
}

// TestServeSameListenerTwice: a second Serve of one listener is refused,
// and the first keeps serving.
func TestServeSameListenerTwice(t *testing.T) {
	s, err := New(Config{App: echoApp{}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveListener(t, s, ln)
	waitFor(t, 2*time.Second, "the first Serve", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.listeners) == 1
	})
	if err := s.Serve(ln); err == nil || !strings.Contains(err.Error(), "one listener") {
		t.Errorf("second Serve of one listener: %v; want an error", err)
	}
	c, resp, err := gorilla.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	expectText(t, c, "Hi Client!")
}
