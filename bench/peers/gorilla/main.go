// Command gorilla is the goroutine-per-connection benchmark peer: net/http plus
// gorilla/websocket, shaped like gorilla's own chat example. Every connection
// gets a reader goroutine (ReadMessage in a loop) and a writer goroutine that
// owns all writes — the greeting, the echoes the reader hands it over a
// channel, and the time pushes from its own time.Ticker.
//
// Contract (shared by every peer, see ../README.md): GET /ws upgrades; the
// server sends "Hi Client!", echoes every message with its opcode and pushes
// the local time ("2006-01-02 15:04:05") every -push-interval; with
// -fanout-interval D it also broadcasts "F" + its unix-nanosecond send time
// every D (the fan-out workload); it prints "listening on ADDR" to stderr
// once ready and exits 0 on SIGINT/SIGTERM.
//
// Fan-out the gorilla way: one websocket.PreparedMessage per broadcast
// (encoded once), handed to every connection's writer goroutine, which
// sends it with WritePreparedMessage: gorilla allows one concurrent writer,
// and here that writer is writePump. With -fanout-rooms, the hub keeps a
// set of clients per room (the room from /ws?room=NAME) and each broadcast
// is offered to the members of every room in turn, as a chat with rooms
// built on the chat example's hub does.
//
// This peer stays a single file on purpose and shares no code with the
// other peers or with wsload: each peer is written in its own library's
// idiom, the way that library's docs show, so that it measures the library
// and not our helpers. The greeting, push loop and broadcast look alike
// across peers (duplicates lists them) because the contract is the same;
// they are not to be merged.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// writeWait bounds one write, as in gorilla's chat example: a client that
	// stops reading is dropped instead of pinning its writer forever.
	writeWait = 10 * time.Second
	// sendQueue is how many echoes the reader may queue ahead of the writer
	// before it blocks (and so stops reading: TCP back-pressure).
	sendQueue = 16
	timeFmt   = "2006-01-02 15:04:05"
)

// upgrader keeps gorilla's defaults (as in its echo example): zero buffer
// sizes reuse the buffers net/http already allocated for the connection.
var upgrader = websocket.Upgrader{
	// Benchmark peer: accept any Origin, like wsmill's default.
	CheckOrigin: func(*http.Request) bool { return true },
}

type message struct {
	opcode int
	data   []byte
}

type client struct {
	conn *websocket.Conn
	send chan message
	// fan carries broadcasts to the writer; nil without -fanout-interval.
	// One deep: a writer that has not taken the previous broadcast yet is
	// behind, and the next one skips it rather than wait (the walk never
	// blocks on a slow client).
	fan  chan *websocket.PreparedMessage
	quit chan struct{}
	once sync.Once
	hub  *hub   // nil without -fanout-interval
	room string // its room in the hub: "" for all (no -fanout-rooms)
}

// hub is the set of open clients the fan-out walks, by room. Without
// -fanout-rooms every client is in room "", so a broadcast is one room.
type hub struct {
	mu    sync.Mutex
	rooms map[string]map[*client]struct{}
	names []string  // rooms, reused by broadcast, its only user
	snap  []*client // one room's members, reused likewise
}

func (h *hub) add(c *client) {
	h.mu.Lock()
	m := h.rooms[c.room]
	if m == nil {
		m = make(map[*client]struct{})
		h.rooms[c.room] = m
	}
	m[c] = struct{}{}
	h.mu.Unlock()
}

// del takes c out of its room and drops the room when it empties.
func (h *hub) del(c *client) {
	h.mu.Lock()
	m := h.rooms[c.room]
	delete(m, c)
	if len(m) == 0 {
		delete(h.rooms, c.room)
	}
	h.mu.Unlock()
}

// broadcast prepares payload once and offers it to the writer of every
// client of every room, a room at a time.
func (h *hub) broadcast(payload []byte) {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, payload)
	if err != nil {
		return
	}
	h.mu.Lock()
	h.names = h.names[:0]
	for name := range h.rooms {
		h.names = append(h.names, name)
	}
	h.mu.Unlock()
	for _, name := range h.names {
		h.mu.Lock()
		h.snap = h.snap[:0]
		for c := range h.rooms[name] {
			h.snap = append(h.snap, c)
		}
		h.mu.Unlock()
		for i, c := range h.snap {
			select {
			case c.fan <- pm:
			default: // the previous broadcast is still waiting for this writer
			}
			h.snap[i] = nil
		}
	}
}

// fanout broadcasts "F" and the unix-nanosecond send time, taken just
// before the broadcast starts, every interval.
func (h *hub) fanout(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for range t.C {
		h.broadcast(strconv.AppendInt([]byte{'F'}, time.Now().UnixNano(), 10))
	}
}

// stop ends both pumps: it wakes a reader blocked on send and a writer
// waiting in select, and closing the conn fails any blocked read or write.
func (c *client) stop() {
	c.once.Do(func() {
		if c.hub != nil {
			c.hub.del(c)
		}
		close(c.quit)
		_ = c.conn.Close()
	})
}

// readPump is the connection's only reader.
func (c *client) readPump() {
	defer c.stop()
	for {
		op, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		select {
		case c.send <- message{op, data}:
		case <-c.quit:
			return
		}
	}
}

// writePump is the connection's only writer (Close and control frames
// excepted, which gorilla allows concurrently).
func (c *client) writePump(push time.Duration) {
	ticker := time.NewTicker(push)
	defer func() {
		ticker.Stop()
		c.stop()
	}()
	if !c.write(websocket.TextMessage, []byte("Hi Client!")) {
		return
	}
	for {
		select {
		case m := <-c.send:
			if !c.write(m.opcode, m.data) {
				return
			}
		case now := <-ticker.C:
			if !c.write(websocket.TextMessage, []byte(now.Format(timeFmt))) {
				return
			}
		case pm := <-c.fan: // never ready when fan is nil
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if c.conn.WritePreparedMessage(pm) != nil {
				return
			}
		case <-c.quit:
			return
		}
	}
}

func (c *client) write(op int, data []byte) bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return c.conn.WriteMessage(op, data) == nil
}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	push := flag.Duration("push-interval", 5*time.Second, "time push period")
	fanout := flag.Duration("fanout-interval", 0, "broadcast \"F\"+unix ns to every connection this often (0: never)")
	deflate := flag.Bool("deflate", false, "negotiate permessage-deflate (gorilla's Upgrader.EnableCompression: no context takeover, every message written compressed at level 1)")
	withRooms := flag.Bool("fanout-rooms", false, "with -fanout-interval: publish to every room (joined with /ws?room=NAME) instead of broadcasting")
	flag.Parse()
	// gorilla's documented switch: the Upgrader negotiates permessage-
	// deflate when the client offers it, and a negotiated conn compresses
	// every data message it writes (EnableWriteCompression is on by default).
	upgrader.EnableCompression = *deflate
	if *push <= 0 {
		fmt.Fprintln(os.Stderr, "-push-interval must be > 0")
		os.Exit(2)
	}
	if *withRooms && *fanout <= 0 {
		fmt.Fprintln(os.Stderr, "-fanout-rooms needs -fanout-interval > 0")
		os.Exit(2)
	}

	var h *hub
	if *fanout > 0 {
		h = &hub{rooms: make(map[string]map[*client]struct{})}
		go h.fanout(*fanout)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		room := ""
		if *withRooms {
			if room = r.URL.Query().Get("room"); room == "" {
				http.Error(w, "no room: upgrade at /ws?room=NAME", http.StatusBadRequest)
				return
			}
		}
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has already answered with an HTTP error
		}
		c := &client{conn: conn, send: make(chan message, sendQueue), quit: make(chan struct{})}
		if h != nil {
			c.fan, c.hub, c.room = make(chan *websocket.PreparedMessage, 1), h, room
			h.add(c)
		}
		go c.writePump(*push)
		go c.readPump()
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintln(os.Stderr, "listening on", ln.Addr().String())

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	select {
	case <-ctx.Done():
		// Hijacked WebSocket connections are not tracked by http.Server;
		// they end with the process.
		_ = srv.Close()
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
