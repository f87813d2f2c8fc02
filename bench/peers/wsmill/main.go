// Command wsmill is the benchmark peer written on wsmill's application API
// (package server): the API's second user after the demo in the repository
// root, and the wsmill side of the fan-out workload. It greets, echoes and
// pushes the time like the demo, and with -fanout-interval it broadcasts one
// prepared frame to every connection with Server.Broadcast, the API's
// documented fan-out. With -fanout-rooms as well, each connection joins the
// room named in its upgrade (/ws?room=NAME) with Server.Subscribe in OnOpen,
// and each tick's frame is published to every room with Server.Publish.
//
// Contract (shared by every peer, see ../README.md): GET /ws upgrades; the
// server sends "Hi Client!", echoes every message with its opcode and pushes
// the local time ("2006-01-02 15:04:05") every -push-interval; with
// -fanout-interval D it also broadcasts "F" + its unix-nanosecond send time
// every D; it prints "listening on ADDR" to stderr once ready and exits 0
// on SIGINT/SIGTERM.
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
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wsmill/wsmill/server"
)

const timeFmt = "2006-01-02 15:04:05"

var greeting = server.NewFrame(server.OpText, []byte("Hi Client!"))

// app greets and echoes; every method runs on the connection's worker.
// With rooms (-fanout-rooms) it subscribes each connection to the room
// OnUpgrade attached; the server takes it out when it closes.
type app struct{ rooms *roomSet }

func (a app) OnOpen(c server.Conn) {
	if a.rooms != nil {
		c.Server().Subscribe(c, c.Value().(string))
	}
	c.SendFrame(greeting, server.Reliable)
}

// OnMessage echoes the borrowed payload; Send copies what the kernel does
// not take at once.
func (app) OnMessage(c server.Conn, op server.Opcode, payload []byte) {
	c.Send(op, payload, server.Reliable)
}

func (app) OnClose(server.Conn, server.CloseCode) {}

// clock is the time push: one frame per second, shared by every connection
// pushed in that second. Only the wheel goroutine calls frameAt.
type clock struct {
	sec   int64
	frame *server.Frame
}

func (k *clock) frameAt(now time.Time) *server.Frame {
	if sec := now.Unix(); sec != k.sec || k.frame == nil {
		k.sec, k.frame = sec, server.NewFrame(server.OpText, []byte(now.Format(timeFmt)))
	}
	return k.frame
}

// roomSet is the names of the rooms clients asked for, so that a tick can
// publish to each: the topics themselves (their members, their leaving at
// close) are the server's. A name stays once seen; a topic whose
// subscribers have all gone costs the server nothing, and Publish to it
// returns at once.
type roomSet struct {
	mu    sync.Mutex
	seen  map[string]bool
	names []string // append-only; the publisher reads a prefix
}

func (r *roomSet) add(name string) {
	r.mu.Lock()
	if !r.seen[name] {
		r.seen[name] = true
		r.names = append(r.names, name)
	}
	r.mu.Unlock()
}

func (r *roomSet) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[:len(r.names):len(r.names)]
}

// upgradeRoom takes the room from the query ("/ws?room=r7"); a request
// without one is refused with 400, so a client that forgot its room hears
// about it instead of waiting for frames that never come.
func (r *roomSet) upgradeRoom(req *server.Request) (any, int) {
	q, err := url.ParseQuery(string(req.Query()))
	room := q.Get("room")
	if err != nil || room == "" {
		return nil, 400
	}
	r.add(room)
	return room, 0
}

// fanout broadcasts "F" and the unix-nanosecond send time, taken just
// before the broadcast starts, every interval until ctx ends. LatestOnly:
// a client still holding the previous broadcast in its queue skips this one.
// With rooms, the same frame (one send time per tick) is published to
// every room in turn instead.
func fanout(ctx context.Context, srv *server.Server, interval time.Duration, rooms *roomSet) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var b []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b = strconv.AppendInt(append(b[:0], 'F'), time.Now().UnixNano(), 10)
		f := server.NewFrame(server.OpText, b)
		if rooms == nil {
			srv.Broadcast(f, server.LatestOnly)
			continue
		}
		for _, room := range rooms.list() {
			srv.Publish(room, f, server.LatestOnly)
		}
	}
}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	push := flag.Duration("push-interval", 5*time.Second, "time push period")
	fan := flag.Duration("fanout-interval", 0, "broadcast \"F\"+unix ns to every connection this often (0: never)")
	withRooms := flag.Bool("fanout-rooms", false, "with -fanout-interval: publish to every room (joined with /ws?room=NAME) instead of broadcasting")
	flag.Parse()
	if *push <= 0 {
		fmt.Fprintln(os.Stderr, "-push-interval must be > 0")
		os.Exit(2)
	}
	if *withRooms && *fan <= 0 {
		fmt.Fprintln(os.Stderr, "-fanout-rooms needs -fanout-interval > 0")
		os.Exit(2)
	}
	var rooms *roomSet
	var onUpgrade func(*server.Request) (any, int)
	if *withRooms {
		rooms = &roomSet{seen: map[string]bool{}}
		onUpgrade = rooms.upgradeRoom
	}

	server.SetProcs(0) // one spare P per worker, as the wsmill command does
	k := &clock{}
	srv, err := server.New(server.Config{
		PushInterval: *push,
		IdleTimeout:  -1, // no peer has an idle timeout
		App:          app{rooms},
		OnUpgrade:    onUpgrade,
		Pushes:       []server.Push{{Frame: k.frameAt, Policy: server.LatestOnly}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintln(os.Stderr, "listening on", ln.Addr().String())

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if *fan > 0 {
		go fanout(ctx, srv, *fan, rooms)
	}
	select {
	case <-ctx.Done():
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx) // clients that do not answer Close 1001 are cut at 2 s
		scancel()
	case err := <-served:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
