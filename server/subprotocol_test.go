package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

func TestRequestProtocols(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header string
		want   []string
	}{
		{"none", "Host: x\r\n", nil},
		{"one", "Sec-WebSocket-Protocol: chat\r\n", []string{"chat"}},
		{"list", "sec-websocket-protocol:  json , proto.v2,,\tx \r\n", []string{"json", "proto.v2", "x"}},
		{"two fields", "Sec-WebSocket-Protocol: a\r\nHost: x\r\nSec-WebSocket-Protocol: b, c\r\n", []string{"a", "b", "c"}},
		{"not tokens skipped", "Sec-WebSocket-Protocol: a b, \"q\", ok\r\n", []string{"ok"}},
		{"other field", "Sec-WebSocket-Protocols: a\r\n", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{header: []byte(tt.header)}
			var got []string
			for p := range r.Protocols {
				got = append(got, string(p))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestRequestAddHeader(t *testing.T) {
	r := &Request{}
	for _, tt := range []struct {
		name, value string
		ok          bool
	}{
		{"WWW-Authenticate", `Bearer realm="chat"`, true},
		{"X-Trace", "a\tb", true},
		{"X-Evil", "a\r\nSet-Cookie: x=1", false},
		{"Bad Name", "v", false},
		{"sec-websocket-accept", "v", false},
		{"Sec-WebSocket-Protocol", "chat", false},
		{"Content-Length", "0", false},
		{"", "v", false},
	} {
		if err := r.AddHeader(tt.name, tt.value); (err == nil) != tt.ok {
			t.Errorf("AddHeader(%q, %q): got %v; want ok=%v", tt.name, tt.value, err, tt.ok)
		} else if err != nil && !errors.Is(err, ErrBadHeader) {
			t.Errorf("AddHeader(%q, %q): got %v; want ErrBadHeader", tt.name, tt.value, err)
		}
	}
	if r.nhdr != 2 {
		t.Errorf("%d fields kept; want 2", r.nhdr)
	}
}

// protoApp records each connection's Subprotocol in OnOpen and OnClose.
type protoApp struct{ open, closed chan string }

func (a *protoApp) OnOpen(c Conn)                  { a.open <- c.Subprotocol() }
func (a *protoApp) OnMessage(Conn, Opcode, []byte) {}
func (a *protoApp) OnClose(c Conn, _ CloseCode)    { a.closed <- c.Subprotocol() }
func newProtoApp() *protoApp {
	return &protoApp{open: make(chan string, 4), closed: make(chan string, 4)}
}
func dialCoder(ctx context.Context, url string, p ...string) (*coder.Conn, *http.Response, error) {
	return coder.Dial(ctx, url, &coder.DialOptions{Subprotocols: p})
}

// supported is what the test server speaks, in its own preference order.
var supported = []string{"proto.v2", "json"}

// choose selects the first offered subprotocol the server speaks, and
// refuses with 401 and a WWW-Authenticate field a client offering "nologin".
func choose(errs chan<- error) func(r *Request) (any, int) {
	return func(r *Request) (any, int) {
		for p := range r.Protocols {
			if string(p) == "nologin" {
				r.AddHeader("WWW-Authenticate", `Bearer realm="wsmill"`)
				return nil, http.StatusUnauthorized
			}
			if string(p) == "wants-xml" {
				errs <- r.SelectProtocol("xml") // not offered: an error, nothing selected
				return nil, 0
			}
			for _, s := range supported {
				if string(p) == s {
					errs <- r.SelectProtocol(s)
					return nil, 0
				}
			}
		}
		return nil, 0
	}
}

// TestSubprotocol: gorilla's and coder/websocket's Subprotocols options
// against OnUpgrade's choice: the 101 carries it, both ends agree, and
// Conn.Subprotocol reports it in OnOpen and OnClose.
func TestSubprotocol(t *testing.T) {
	app := newProtoApp()
	errs := make(chan error, 8)
	_, addr := startServer(t, Config{App: app, OnUpgrade: choose(errs)})
	url := "ws://" + addr + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	for _, tt := range []struct {
		name    string
		offered []string
		want    string
	}{
		{"first supported", []string{"mqtt", "json", "proto.v2"}, "json"},
		{"only one", []string{"proto.v2"}, "proto.v2"},
		{"none supported", []string{"mqtt"}, ""},
		{"none offered", nil, ""},
	} {
		t.Run("gorilla/"+tt.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tt.offered}
			c, resp, err := d.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Subprotocol(); got != tt.want {
				t.Errorf("client got %q; want %q", got, tt.want)
			}
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tt.want {
				t.Errorf("101 carries %q; want %q", got, tt.want)
			}
			if got := <-app.open; got != tt.want {
				t.Errorf("Subprotocol in OnOpen %q; want %q", got, tt.want)
			}
			c.Close()
			if got := <-app.closed; got != tt.want {
				t.Errorf("Subprotocol in OnClose %q; want %q", got, tt.want)
			}
		})
		t.Run("coder/"+tt.name, func(t *testing.T) {
			c, _, err := dialCoder(ctx, url, tt.offered...)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Subprotocol(); got != tt.want {
				t.Errorf("client got %q; want %q", got, tt.want)
			}
			if got := <-app.open; got != tt.want {
				t.Errorf("Subprotocol in OnOpen %q; want %q", got, tt.want)
			}
			c.CloseNow()
			<-app.closed
		})
	}
	for len(errs) > 0 {
		if err := <-errs; err != nil {
			t.Errorf("SelectProtocol of an offered value: %v", err)
		}
	}
}

// TestSubprotocolNotOffered: selecting a value the client did not offer is
// an error the application gets, and the 101 carries no subprotocol, so
// the client (which MUST fail a connection with one it did not ask for)
// connects.
func TestSubprotocolNotOffered(t *testing.T) {
	app := newProtoApp()
	errs := make(chan error, 2)
	_, addr := startServer(t, Config{App: app, OnUpgrade: choose(errs)})
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", http.Header{"Sec-WebSocket-Protocol": {"wants-xml"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-errs; !errors.Is(err, ErrProtocolNotOffered) {
		t.Errorf("SelectProtocol(\"xml\"): %v; want ErrProtocolNotOffered", err)
	}
	if got, ok := resp.Header["Sec-Websocket-Protocol"]; ok {
		t.Errorf("101 carries Sec-WebSocket-Protocol %q; want none", got)
	}
	if got := <-app.open; got != "" {
		t.Errorf("Subprotocol %q; want none", got)
	}
}

// TestRefusalHeaders: a 401 from OnUpgrade carries the field it added,
// to gorilla and to coder/websocket, and no subprotocol.
func TestRefusalHeaders(t *testing.T) {
	s, addr := startServer(t, Config{App: newProtoApp(), OnUpgrade: choose(make(chan error, 8))})
	url := "ws://" + addr + "/ws"
	_, resp, err := (&websocket.Dialer{Subprotocols: []string{"nologin"}}).Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("gorilla: got %v, %v; want a 401", resp, err)
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="wsmill"` {
		t.Errorf("gorilla: WWW-Authenticate %q; want Bearer realm=\"wsmill\"", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err = dialCoder(ctx, url, "nologin")
	if err == nil || resp == nil || resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("coder: got %v, %v; want a 401 with WWW-Authenticate", resp, err)
	}
	waitFor(t, 2*time.Second, "two refusals counted", func() bool { return s.Stats().RejectedBy[RejectApp] == 2 })
}

// TestAcceptHeaders: a field OnUpgrade adds goes out in the 101 as well.
func TestAcceptHeaders(t *testing.T) {
	cfg := Config{App: newProtoApp(), OnUpgrade: func(r *Request) (any, int) {
		r.AddHeader("Set-Cookie", "session=abc")
		return nil, 0
	}}
	_, addr := startServer(t, cfg)
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := resp.Header.Get("Set-Cookie"); got != "session=abc" {
		t.Errorf("Set-Cookie %q; want session=abc", got)
	}
}

// TestUpgradePanicDropsHeaders: the 500 after a panicking OnUpgrade
// carries no field the hook had added before it panicked.
func TestUpgradePanicDropsHeaders(t *testing.T) {
	cfg := Config{App: newProtoApp(), OnUpgrade: func(r *Request) (any, int) {
		r.AddHeader("WWW-Authenticate", "Bearer")
		panic("half done")
	}}
	_, addr := startServer(t, cfg)
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != 500 {
		t.Fatalf("got %v, %v; want a 500", resp, err)
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != "" {
		t.Errorf("500 carries WWW-Authenticate %q; want none", got)
	}
}
