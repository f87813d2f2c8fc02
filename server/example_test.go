package server_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmill/wsmill/server"
)

// echo sends every message back. The payload is borrowed (valid during
// OnMessage only); Send copies whatever the kernel does not take at once.
type echo struct{}

func (echo) OnOpen(server.Conn) {}

func (echo) OnMessage(c server.Conn, op server.Opcode, payload []byte) {
	c.Send(op, payload, server.Reliable)
}

func (echo) OnClose(server.Conn, server.CloseCode) {}

// An echo server.
func Example_echo() {
	srv, _ := server.New(server.Config{App: echo{}})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	c := dial(ln, "/ws")
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, msg, _ := c.ReadMessage()
	fmt.Println(string(msg))
	// Output: hello
}

// A ticker: one goroutine broadcasts the price to every client each second.
// The frame is prepared once per tick and shared by every connection;
// LatestOnly means a client that is behind skips a price rather than
// queueing old ones.
func Example_ticker() {
	srv, _ := server.New(server.Config{}) // no App: the clients only listen
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		price := 100.0
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				price += 0.25
				f := server.NewFrame(server.OpText, strconv.AppendFloat([]byte("EURUSD "), price, 'f', 2, 64))
				srv.Broadcast(f, server.LatestOnly)
			case <-stop:
				return
			}
		}
	}()

	c := dial(ln, "/ws")
	defer c.Close()
	_, msg, _ := c.ReadMessage()
	fmt.Println(string(msg))
	// Output: EURUSD 100.25
}

// chat keeps no table of rooms: each client is subscribed to its room's
// topic, and the server takes it out when it leaves, however it leaves.
// OnUpgrade took the name and the room from the query and attached them.
type chat struct{}

type member struct{ name, room string }

func (chat) OnOpen(c server.Conn) {
	c.Server().Subscribe(c, c.Value().(member).room)
	c.Send(server.OpText, []byte("welcome to "+c.Value().(member).room), server.Reliable)
}

func (chat) OnMessage(c server.Conn, op server.Opcode, payload []byte) {
	m := c.Value().(member) // one frame for the whole room:
	c.Server().Publish(m.room, server.NewFrame(server.OpText, append([]byte(m.name+": "), payload...)), server.Reliable)
}

func (chat) OnClose(server.Conn, server.CloseCode) {}

// Chat rooms with names.
func Example_chat() {
	srv, _ := server.New(server.Config{
		App: chat{},
		OnUpgrade: func(req *server.Request) (any, int) {
			q, _ := url.ParseQuery(string(req.Query())) // "/ws?name=ann&room=go"
			if q.Get("name") == "" || q.Get("room") == "" {
				return nil, 400
			}
			return member{q.Get("name"), q.Get("room")}, 0
		},
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	say := func(c *websocket.Conn, msg string) { c.WriteMessage(websocket.TextMessage, []byte(msg)) }
	hear := func(c *websocket.Conn) { _, msg, _ := c.ReadMessage(); fmt.Println(string(msg)) }
	ann, bob, cat := dial(ln, "/ws?name=ann&room=go"), dial(ln, "/ws?name=bob&room=go"), dial(ln, "/ws?name=cat&room=zig")
	defer func() { ann.Close(); bob.Close(); cat.Close() }()
	hear(ann) // each is in its room now
	hear(bob)
	hear(cat)
	say(ann, "hi")
	hear(ann)
	hear(bob)
	say(cat, "anyone?")
	hear(cat)
	say(bob, "bye")
	hear(bob) // nothing from the other room
	// Output:
	// welcome to go
	// welcome to go
	// welcome to zig
	// ann: hi
	// ann: hi
	// cat: anyone?
	// bob: bye
}

// dial connects a gorilla/websocket client to path, with a read deadline.
func dial(ln net.Listener, path string) *websocket.Conn {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+path, nil)
	if err != nil {
		panic(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

// quotes answers "price SYMBOL" with the price from a slow store. The
// query blocks, so it runs on the offload pool (Conn.Go), never on the
// worker: the worker goes on serving every other connection, and one
// client's answers still come in the order it asked.
type quotes struct{}

func (quotes) OnOpen(server.Conn) {}

func (quotes) OnMessage(c server.Conn, op server.Opcode, payload []byte) {
	// payload is borrowed: Go copies it for the job. A function captures
	// nothing, so this allocates nothing (a closure would).
	if c.Go(lookupQuote, payload) != server.Queued {
		c.Send(server.OpText, []byte("busy, try again"), server.Reliable) // backlog full
	}
}

func (quotes) OnClose(server.Conn, server.CloseCode) {}

// lookupQuote runs on a pool goroutine; data is its own until it returns.
func lookupQuote(c server.Conn, data []byte) {
	symbol := strings.TrimPrefix(string(data), "price ")
	price := queryDatabase(symbol)
	c.Send(server.OpText, []byte(symbol+" "+price), server.Reliable)
}

// queryDatabase stands for a database round trip.
func queryDatabase(symbol string) string {
	time.Sleep(20 * time.Millisecond)
	return map[string]string{"EURUSD": "1.0842", "GBPUSD": "1.2710"}[symbol]
}

// A handler that queries a database, without blocking the worker.
func Example_offload() {
	srv, _ := server.New(server.Config{App: quotes{}})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	c := dial(ln, "/ws")
	defer c.Close()
	c.WriteMessage(websocket.TextMessage, []byte("price EURUSD"))
	c.WriteMessage(websocket.TextMessage, []byte("price GBPUSD"))
	for range 2 {
		_, msg, _ := c.ReadMessage()
		fmt.Println(string(msg))
	}
	// Output:
	// EURUSD 1.0842
	// GBPUSD 1.2710
}
