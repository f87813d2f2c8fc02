package server_test

import (
	"context"
	"fmt"
	"net"
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

// room is a chat room: every message goes to everybody, prefixed with the
// sender's name, which OnUpgrade took from the query and attached to the
// connection; the server is the connection's (Conn.Server).
type room struct{}

func (r *room) OnOpen(c server.Conn) {}

func (r *room) OnMessage(c server.Conn, op server.Opcode, payload []byte) {
	line := append([]byte(c.Value().(string)+": "), payload...)
	c.Server().Broadcast(server.NewFrame(server.OpText, line), server.Reliable)
}

func (r *room) OnClose(c server.Conn, code server.CloseCode) {}

// A chat room with names.
func Example_chat() {
	srv, _ := server.New(server.Config{
		App: &room{},
		OnUpgrade: func(req *server.Request) (any, int) {
			name := string(req.Query()) // "/ws?ann" -> "ann"
			if name == "" {
				return nil, 400
			}
			return name, 0
		},
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	ann, bob := dial(ln, "/ws?ann"), dial(ln, "/ws?bob")
	defer ann.Close()
	defer bob.Close()
	ann.WriteMessage(websocket.TextMessage, []byte("hi bob"))
	_, a, _ := ann.ReadMessage()
	_, b, _ := bob.ReadMessage()
	fmt.Println(string(a))
	fmt.Println(string(b))
	// Output:
	// ann: hi bob
	// ann: hi bob
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
