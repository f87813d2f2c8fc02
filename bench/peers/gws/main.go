// Command gws is the event-driven-library benchmark peer: lxzan/gws behind
// net/http, used the way its README and examples/push show. gws still reads
// with one goroutine per connection (socket.ReadLoop), but the application
// only implements event callbacks, and the time push comes from ONE shared
// ticker goroutine that walks every connection with a gws.Broadcaster (the
// documented broadcast API: the frame is built once and each connection's
// copy is queued on that connection's own async write queue, so one slow
// client never stalls the walk).
//
// Rooms (-fanout-rooms), the way gws's README "Pub / Sub" and its chatroom
// example show: Authorize keeps the room from /ws?room=NAME in the
// connection's session storage, OnOpen adds the connection to its room's
// member map, OnClose takes it out, and a publish is one Broadcaster per
// message with Broadcast for every member of every room.
//
// Contract (shared by every peer, see ../README.md): GET /ws upgrades; the
// server sends "Hi Client!", echoes every message with its opcode and pushes
// the local time ("2006-01-02 15:04:05") every -push-interval; with
// -fanout-interval D it also broadcasts "F" + its unix-nanosecond send time
// every D (the fan-out workload); it prints "listening on ADDR" to stderr
// once ready and exits 0 on SIGINT/SIGTERM.
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

	"github.com/lxzan/gws"
)

const timeFmt = "2006-01-02 15:04:05"

// handler implements gws.Event. ParallelEnabled is left false (the default),
// so OnMessage runs on the connection's ReadLoop goroutine, in order.
type handler struct {
	gws.BuiltinEventHandler
	conns *gws.ConcurrentMap[*gws.Conn, struct{}]
	rooms *rooms // nil without -fanout-rooms
}

// rooms is the topic table gws's README builds with lxzan/event_emitter
// (not reachable from this module proxy, so here by hand): room name →
// members, each room a gws.ConcurrentMap (sharded locks, as gws's chatroom
// example stores its connections). A room that empties is dropped.
type rooms struct {
	mu    sync.Mutex
	m     map[string]*gws.ConcurrentMap[*gws.Conn, struct{}]
	names []string // reused by publish, its only user
	snap  []*gws.ConcurrentMap[*gws.Conn, struct{}]
}

const roomKey = "room" // the session storage key of a connection's room

func (r *rooms) join(socket *gws.Conn) {
	name := roomOf(socket)
	r.mu.Lock()
	m := r.m[name]
	if m == nil {
		m = gws.NewConcurrentMap[*gws.Conn, struct{}](16)
		r.m[name] = m
	}
	m.Store(socket, struct{}{})
	r.mu.Unlock()
}

func (r *rooms) leave(socket *gws.Conn) {
	name := roomOf(socket)
	r.mu.Lock()
	if m := r.m[name]; m != nil {
		m.Delete(socket)
		if m.Len() == 0 {
			delete(r.m, name)
		}
	}
	r.mu.Unlock()
}

func roomOf(socket *gws.Conn) string {
	v, _ := socket.Session().Load(roomKey)
	name, _ := v.(string)
	return name
}

// authorize keeps the room of /ws?room=NAME in the session; a request
// without one is refused (gws answers 401 Unauthorized).
func authorize(r *http.Request, session gws.SessionStorage) bool {
	room := r.URL.Query().Get("room")
	if room == "" {
		return false
	}
	session.Store(roomKey, room)
	return true
}

// publish sends payload once to every member of every room: one
// Broadcaster for the message, Broadcast per member, Close.
func (r *rooms) publish(payload []byte) {
	b := gws.NewBroadcaster(gws.OpcodeText, payload)
	r.mu.Lock()
	r.snap = r.snap[:0]
	for _, m := range r.m {
		r.snap = append(r.snap, m)
	}
	r.mu.Unlock()
	for i, m := range r.snap {
		m.Range(func(socket *gws.Conn, _ struct{}) bool {
			_ = b.Broadcast(socket)
			return true
		})
		r.snap[i] = nil
	}
	_ = b.Close()
}

func (h *handler) OnOpen(socket *gws.Conn) {
	h.conns.Store(socket, struct{}{})
	if h.rooms != nil {
		h.rooms.join(socket)
	}
	_ = socket.WriteString("Hi Client!")
}

func (h *handler) OnClose(socket *gws.Conn, err error) {
	h.conns.Delete(socket)
	if h.rooms != nil {
		h.rooms.leave(socket)
	}
}

func (h *handler) OnPing(socket *gws.Conn, payload []byte) {
	_ = socket.WritePong(payload)
}

func (h *handler) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	_ = socket.WriteMessage(message.Opcode, message.Bytes())
}

// broadcast sends payload to every open connection, once, the way gws
// documents it: one Broadcaster per message (the frame is encoded once),
// Broadcast per connection (queued on that connection's write queue), Close.
func (h *handler) broadcast(payload []byte) {
	b := gws.NewBroadcaster(gws.OpcodeText, payload)
	h.conns.Range(func(socket *gws.Conn, _ struct{}) bool {
		_ = b.Broadcast(socket)
		return true
	})
	_ = b.Close()
}

// fanoutPayload is the fan-out frame: "F" and the send time in unix ns,
// taken just before the broadcast starts.
func fanoutPayload() []byte {
	return strconv.AppendInt([]byte{'F'}, time.Now().UnixNano(), 10)
}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	push := flag.Duration("push-interval", 5*time.Second, "time push period")
	fanout := flag.Duration("fanout-interval", 0, "broadcast \"F\"+unix ns to every connection this often (0: never)")
	deflate := flag.Bool("deflate", false, "negotiate permessage-deflate (gws.PermessageDeflate{Enabled: true}, as gws's README configures a server)")
	withRooms := flag.Bool("fanout-rooms", false, "with -fanout-interval: publish to every room (joined with /ws?room=NAME) instead of broadcasting")
	flag.Parse()
	if *push <= 0 {
		fmt.Fprintln(os.Stderr, "-push-interval must be > 0")
		os.Exit(2)
	}
	if *withRooms && *fanout <= 0 {
		fmt.Fprintln(os.Stderr, "-fanout-rooms needs -fanout-interval > 0")
		os.Exit(2)
	}

	h := &handler{conns: gws.NewConcurrentMap[*gws.Conn, struct{}](64)}
	opt := &gws.ServerOption{
		// ParallelEnabled: false (default) — messages handled in order on
		// the read goroutine. No UTF-8 check: same work as the other peers.
		// With -deflate, compression as gws's README sets up a server:
		// Enabled and every other field at its default (no context
		// takeover either way, level BestSpeed, messages under 512 bytes
		// sent plain, a pool of 32 compressors).
		PermessageDeflate: gws.PermessageDeflate{Enabled: *deflate},
	}
	if *withRooms {
		h.rooms = &rooms{m: map[string]*gws.ConcurrentMap[*gws.Conn, struct{}]{}}
		opt.Authorize = authorize
	}
	upgrader := gws.NewUpgrader(h, opt)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		socket, err := upgrader.Upgrade(w, r)
		if err != nil {
			return // gws has already answered 400 and closed
		}
		// README: "If HTTP Server is reused, it is recommended to enable
		// goroutine, as blocking will prevent the context from being GC."
		go socket.ReadLoop()
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ticker := time.NewTicker(*push)
	defer ticker.Stop()
	var fan <-chan time.Time // nil (never ready) unless -fanout-interval
	if *fanout > 0 {
		ft := time.NewTicker(*fanout)
		defer ft.Stop()
		fan = ft.C
	}
	fmt.Fprintln(os.Stderr, "listening on", ln.Addr().String())

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	for {
		select {
		case now := <-ticker.C:
			h.broadcast([]byte(now.Format(timeFmt)))
		case <-fan:
			if h.rooms != nil {
				h.rooms.publish(fanoutPayload())
			} else {
				h.broadcast(fanoutPayload())
			}
		case <-ctx.Done():
			_ = srv.Close()
			return
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			return
		}
	}
}
