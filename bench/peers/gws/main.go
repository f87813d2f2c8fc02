// Command gws is the event-driven-library benchmark peer: lxzan/gws behind
// net/http, used the way its README and examples/push show. gws still reads
// with one goroutine per connection (socket.ReadLoop), but the application
// only implements event callbacks, and the time push comes from ONE shared
// ticker goroutine that walks every connection with a gws.Broadcaster (the
// documented broadcast API: the frame is built once and each connection's
// copy is queued on that connection's own async write queue, so one slow
// client never stalls the walk).
//
// Contract (shared by every peer, see ../README.md): GET /ws upgrades; the
// server sends "Hi Client!", echoes every message with its opcode and pushes
// the local time ("2006-01-02 15:04:05") every -push-interval; with
// -fanout-interval D it also broadcasts "F" + its unix-nanosecond send time
// every D (the fan-out workload); it prints "listening on ADDR" to stderr
// once ready and exits 0 on SIGINT/SIGTERM.
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
}

func (h *handler) OnOpen(socket *gws.Conn) {
	h.conns.Store(socket, struct{}{})
	_ = socket.WriteString("Hi Client!")
}

func (h *handler) OnClose(socket *gws.Conn, err error) {
	h.conns.Delete(socket)
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
	flag.Parse()
	if *push <= 0 {
		fmt.Fprintln(os.Stderr, "-push-interval must be > 0")
		os.Exit(2)
	}

	h := &handler{conns: gws.NewConcurrentMap[*gws.Conn, struct{}](64)}
	upgrader := gws.NewUpgrader(h, &gws.ServerOption{
		// ParallelEnabled: false (default) — messages handled in order on
		// the read goroutine. No UTF-8 check: same work as the other peers.
		// With -deflate, compression as gws's README sets up a server:
		// Enabled and every other field at its default (no context
		// takeover either way, level BestSpeed, messages under 512 bytes
		// sent plain, a pool of 32 compressors).
		PermessageDeflate: gws.PermessageDeflate{Enabled: *deflate},
	})

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
			h.broadcast(fanoutPayload())
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
