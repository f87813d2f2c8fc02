// Command nbio is the epoll-library benchmark peer: lesismal/nbio's
// nbhttp.Engine in IOModNonBlocking (every connection lives on nbio's own
// epoll pollers, no goroutine per connection) with the websocket Upgrader
// from nbio/nbhttp/websocket, written like nbio's examples. The time push
// comes from ONE shared ticker goroutine that walks every connection and
// calls websocket.Conn.WriteMessage: on a poller-owned connection that write
// is non-blocking (what the socket does not take at once is buffered by nbio
// and flushed on EPOLLOUT), so one slow client never stalls the walk.
//
// Contract (shared by every peer, see ../README.md): GET /ws upgrades; the
// server sends "Hi Client!", echoes every message with its opcode and pushes
// the local time ("2006-01-02 15:04:05") every -push-interval; with
// -fanout-interval D it also broadcasts "F" + its unix-nanosecond send time
// every D (the fan-out workload), with the same walk; it prints "listening
// on ADDR" to stderr once ready and exits 0 on SIGINT/SIGTERM.
//
// Rooms (-fanout-rooms): nbio has no topics, so rooms are the application's
// map (room name → member set) beside the connection set, joined in the
// http.Handler once Upgrade has returned the conn (nbio's examples set
// per-connection state there) and left in OnClose; a publish walks every
// room with the same non-blocking WriteMessage.
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
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

const timeFmt = "2006-01-02 15:04:05"

// conns is the set the push and fan-out tickers walk (both from main's
// loop, one at a time: snap is not shared between goroutines).
type conns struct {
	mu sync.Mutex
	m  map[*websocket.Conn]struct{}
	// snap is reused between pushes so the walk does not hold mu while
	// writing.
	snap []*websocket.Conn

	// With -fanout-rooms: the members of each room, and each member's
	// room. Changed under mu together with m, so a conn that closed
	// before the handler could join it (OnClose already ran) is not
	// joined.
	rooms  map[string]map[*websocket.Conn]struct{}
	roomOf map[*websocket.Conn]string
	names  []string // reused by publish
}

func (s *conns) add(c *websocket.Conn) {
	s.mu.Lock()
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

func (s *conns) del(c *websocket.Conn) {
	s.mu.Lock()
	delete(s.m, c)
	if room, ok := s.roomOf[c]; ok {
		delete(s.roomOf, c)
		members := s.rooms[room]
		delete(members, c)
		if len(members) == 0 {
			delete(s.rooms, room)
		}
	}
	s.mu.Unlock()
}

// join puts an open conn in room.
func (s *conns) join(c *websocket.Conn, room string) {
	s.mu.Lock()
	if _, open := s.m[c]; open {
		members := s.rooms[room]
		if members == nil {
			members = make(map[*websocket.Conn]struct{})
			s.rooms[room] = members
		}
		members[c] = struct{}{}
		s.roomOf[c] = room
	}
	s.mu.Unlock()
}

// publish writes msg as one text message to every member of every room,
// a room at a time.
func (s *conns) publish(msg []byte) {
	s.mu.Lock()
	s.names = s.names[:0]
	for room := range s.rooms {
		s.names = append(s.names, room)
	}
	s.mu.Unlock()
	for _, room := range s.names {
		s.mu.Lock()
		s.snap = s.snap[:0]
		for c := range s.rooms[room] {
			s.snap = append(s.snap, c)
		}
		s.mu.Unlock()
		for i, c := range s.snap {
			_ = c.WriteMessage(websocket.TextMessage, msg)
			s.snap[i] = nil
		}
	}
}

// send writes msg as one text message to every open connection.
func (s *conns) send(msg []byte) {
	s.mu.Lock()
	s.snap = s.snap[:0]
	for c := range s.m {
		s.snap = append(s.snap, c)
	}
	s.mu.Unlock()
	for i, c := range s.snap {
		_ = c.WriteMessage(websocket.TextMessage, msg) // copies msg; closed conns just fail
		s.snap[i] = nil
	}
}

func newUpgrader(set *conns) *websocket.Upgrader {
	u := websocket.NewUpgrader()
	// Benchmark peer: accept any Origin, like wsmill's default.
	u.CheckOrigin = func(*http.Request) bool { return true }
	// nbio drops a connection that sends nothing for KeepaliveTime (120 s by
	// default); no other peer has an idle timeout, and push-only clients
	// never send, so turn it off.
	u.KeepaliveTime = 0
	u.OnOpen(func(c *websocket.Conn) {
		set.add(c)
		_ = c.WriteMessage(websocket.TextMessage, []byte("Hi Client!"))
	})
	u.OnMessage(func(c *websocket.Conn, op websocket.MessageType, data []byte) {
		_ = c.WriteMessage(op, data) // WriteMessage copies data into its own frame buffer
	})
	u.OnClose(func(c *websocket.Conn, err error) {
		set.del(c)
	})
	return u
}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	push := flag.Duration("push-interval", 5*time.Second, "time push period")
	fanout := flag.Duration("fanout-interval", 0, "broadcast \"F\"+unix ns to every connection this often (0: never)")
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
	// nbio logs its start/stop banners at Info; keep stderr to our one line
	// plus real errors (none of which are per connection).
	logging.SetLevel(logging.LevelError)

	set := &conns{m: make(map[*websocket.Conn]struct{}, 1024),
		rooms: map[string]map[*websocket.Conn]struct{}{}, roomOf: map[*websocket.Conn]string{}}
	upgrader := newUpgrader(set)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		if !*withRooms {
			// On an nbhttp.Engine connection Upgrade keeps the conn on the
			// poller; OnOpen has already run when it returns.
			_, _ = upgrader.Upgrade(w, r, nil)
			return
		}
		room := r.URL.Query().Get("room")
		if room == "" {
			http.Error(w, "no room: upgrade at /ws?room=NAME", http.StatusBadRequest)
			return
		}
		if c, err := upgrader.Upgrade(w, r, nil); err == nil {
			set.join(c, room)
		}
	})

	engine := nbhttp.NewEngine(nbhttp.Config{
		Network: "tcp",
		Addrs:   []string{*addr},
		IOMod:   nbhttp.IOModNonBlocking, // epoll pollers, not goroutine per conn
		MaxLoad: 1 << 20,
		// Recycle the read buffer once OnMessage returns (its data is
		// copied by WriteMessage), as nbio's examples do.
		ReleaseWebsocketPayload: true,
		Handler:                 mux,
	})
	if err := engine.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Start resolves Addrs in place (":0" becomes the real port).
	fmt.Fprintln(os.Stderr, "listening on", engine.Addrs[0])

	ticker := time.NewTicker(*push)
	defer ticker.Stop()
	var fan <-chan time.Time // nil (never ready) unless -fanout-interval
	if *fanout > 0 {
		ft := time.NewTicker(*fanout)
		defer ft.Stop()
		fan = ft.C
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	for {
		select {
		case now := <-ticker.C:
			set.send([]byte(now.Format(timeFmt)))
		case <-fan:
			// "F" and the send time in unix ns, taken just before the walk.
			msg := strconv.AppendInt([]byte{'F'}, time.Now().UnixNano(), 10)
			if *withRooms {
				set.publish(msg)
			} else {
				set.send(msg)
			}
		case <-ctx.Done():
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = engine.Shutdown(sctx)
			scancel()
			return
		}
	}
}
