package server

import (
	"net/http"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// Config holds the server's settings. The zero value is usable: every zero
// field takes the default named in its comment (see withDefaults).
type Config struct {
	// Path is the request path that is upgraded to WebSocket. Default "/ws".
	Path string

	// Paths are more request paths upgraded like Path, for a second
	// application on the same port (the demo's /chat). Their connections
	// get no Pushes: a periodic push is the Path's (the demo's time), and
	// an application on another path says what it sends itself.
	// OnUpgrade tells them apart by Request.Path.
	Paths []string

	// PushInterval is the period of the timing wheel: every Push goes to
	// every connection once per interval, and idle connections are checked
	// once per interval. Default 5s.
	PushInterval time.Duration

	// Workers is the number of event loops (workers), each with its own
	// epoll instance and goroutine; a connection belongs to worker
	// fd % Workers for its whole life. Default DefaultWorkers(): one per
	// core (the runtime's default GOMAXPROCS), the same before and after
	// SetProcs. Run the process with GOMAXPROCS at least Workers + 1
	// (SetProcs gives cores + Workers): a waiting worker holds a P; see
	// "Processors" in the package documentation.
	Workers int

	// MaxMessage is the largest accepted message (the whole message, not one
	// frame) in bytes. Default 1 MiB.
	MaxMessage int

	// MaxBuffered bounds, over all connections, the bytes held for frames
	// and messages that have not arrived whole (a frame that arrives whole
	// in one read is never copied and does not count). A connection whose
	// next chunk would pass it is closed with 1013 (Try Again Later).
	// Default 256 MiB; raised to twice MaxMessage's size class if lower, so
	// that one message of MaxMessage bytes can always be received.
	MaxBuffered int

	// MaxConns caps upgraded connections; beyond it the upgrade answers 503.
	// Default: the open-file limit less ReservedFDs.
	MaxConns int

	// MaxOutbound bounds the bytes waiting in one connection's outbound queue.
	// An empty queue always takes one whole frame (so one echo of MaxMessage
	// bytes always fits); past the bound, time pushes are skipped and an echo
	// closes the connection. Default 64 KiB.
	MaxOutbound int

	// SendBuffer is the kernel's send buffer of every accepted socket
	// (SO_SNDBUF, which the kernel doubles for its own bookkeeping). It
	// bounds what a client that stops reading can make the machine hold
	// for it: at most 2 × SendBuffer in the kernel plus MaxOutbound in the
	// connection's queue. Left to autotuning, a socket grows its buffer to
	// net.ipv4.tcp_wmem's maximum (4 MiB here) for any client that reads
	// slowly. Default 64 KiB (see the README for the measurements behind
	// it); negative leaves the kernel's autotuning on.
	SendBuffer int

	// RecvBuffer is the kernel's receive buffer of every accepted socket
	// (SO_RCVBUF, doubled by the kernel likewise). The workers read every
	// socket as soon as it is readable, so what a client makes the kernel
	// hold here lasts only while the workers are behind; but autotuning
	// grows the buffer of a fast sender up to net.ipv4.tcp_rmem's maximum
	// (32 MiB here), and many fast senders at once can hold that much each.
	// Default 64 KiB, which the kernel doubles to its usual starting size
	// (tcp_rmem's default, 128 KiB) and then keeps from growing; negative
	// leaves the kernel's autotuning on.
	RecvBuffer int

	// HandshakeTimeout is how long a new TCP connection has, in total, to
	// complete its HTTP request. Default 5s.
	HandshakeTimeout time.Duration

	// IdleTimeout: a connection silent this long (no bytes at all from the
	// client) is pinged by the wheel; silent for another IdleTimeout after
	// the ping, it is closed with 1001. Checked at the connection's wheel
	// visit, so the precision is one PushInterval. Default 60s; negative
	// disables it.
	IdleTimeout time.Duration

	// CloseTimeout is how long the server waits for the client's answer to
	// its Close frame (or for its queue to drain) before dropping the TCP
	// connection. Default 2s.
	CloseTimeout time.Duration

	// Origins lists the Origin header values allowed besides the page's
	// own origin (e.g. "https://example.com"); "*" allows every origin.
	// A browser sends its cookies with a WebSocket handshake to any site,
	// so by default (an empty list) only requests without Origin
	// (non-browser clients) and same-origin ones (the Origin's host:port
	// is the request's Host, whatever the scheme) pass, and every other
	// gets 403: another site's page cannot open a connection in the name
	// of the user and read what it carries (cross-site WebSocket
	// hijacking).
	Origins []string

	// App is the application: OnOpen, OnMessage and OnClose for every
	// WebSocket connection (see App). Default: one that ignores everything
	// (connections stay open, messages are dropped).
	App App

	// OnUpgrade, when set, sees every upgrade request that passed the
	// protocol checks and the Origin allow-list, just before the 101. It
	// runs on a worker and must not block. It returns a value attached to
	// the connection (Conn.Value) and 0 to accept, or an HTTP status
	// (300-599; 401, 403, 429, ...) to refuse: the client gets that status
	// and the refusal is counted (reason "app"). Any other status is a bug:
	// the client gets 500, the refusal is counted the same, and OnError
	// says which status came back. Everything in the Request is valid only
	// during the call. It may select one of the subprotocols the client
	// offers (Request.Protocols, SelectProtocol: the 101 carries it,
	// Conn.Subprotocol reports it) and add header fields to the 101 or to
	// the refusal (Request.AddHeader: WWW-Authenticate with a 401).
	OnUpgrade func(r *Request) (value any, status int)

	// Deflate accepts permessage-deflate ([RFC7692]) offers, always with
	// server_no_context_takeover and client_no_context_takeover, so that no
	// connection keeps compression state between messages. Messages of
	// DeflateMin bytes or more then go compressed to the connections that
	// negotiated it (prepared Frames compressed once for all of them), and
	// compressed messages are inflated up to MaxMessage. Default off.
	Deflate bool

	// DeflateMin is the smallest payload sent compressed; smaller ones go
	// plain (compressing them saves a few bytes for more CPU than the
	// bytes cost). Default DefaultDeflateMin.
	DeflateMin int

	// Pushes are sent to every open connection once per PushInterval by
	// the timing wheel, spread over the interval (see Push).
	Pushes []Push

	// Handler serves every HTTP request that is not a WebSocket upgrade on
	// Path. Default: http.NotFoundHandler().
	Handler http.Handler

	// OnError reports errors the server recovers from by itself (a failed
	// accept, an HTTP hand-off that failed) and the application's own: a
	// panic in a callback (a *PanicError: which callback, the connection,
	// the value and the stack) or an OnUpgrade status that is no refusal.
	// It is called from internal goroutines, a worker's included, and must
	// not block. Default: ignore.
	OnError func(error)

	// HTTPTimeout bounds writing the response to a plain HTTP request (one
	// handed to Handler), counted from the end of its header: net/http's
	// WriteTimeout. The request itself, body included, must have arrived
	// within HandshakeTimeout of the accept. Default 10s.
	HTTPTimeout time.Duration

	// OffloadWorkers is the number of goroutines that run the jobs handed
	// over with Conn.Go (blocking work: a database, another service), so
	// at most this many block at once. They start at the first Go.
	// Default DefaultOffloadWorkers.
	OffloadWorkers int

	// OffloadBacklog bounds the jobs one connection may have accepted by
	// Conn.Go and not finished (waiting or running); past it Go reports
	// Skipped and the application decides. Default DefaultOffloadBacklog.
	OffloadBacklog int

	// MaxHTTPConns caps the plain HTTP connections held by net/http at once
	// (each holds a descriptor and goroutines until its response is out);
	// past it a plain request is answered 503 without reaching net/http.
	// Default 256.
	MaxHTTPConns int
}

// DefaultDeflateMin is Config.DeflateMin's default (see the README's
// compression section for the measurements).
const DefaultDeflateMin = 128

// DefaultSendBuffer is Config.SendBuffer's default.
const DefaultSendBuffer = 64 << 10

// DefaultRecvBuffer is Config.RecvBuffer's default.
const DefaultRecvBuffer = 64 << 10

// DefaultOffloadWorkers is Config.OffloadWorkers' default (see the README
// for the measurement behind it).
const DefaultOffloadWorkers = 64

// DefaultOffloadBacklog is Config.OffloadBacklog's default.
const DefaultOffloadBacklog = 16

// ReservedFDs is the number of descriptors the default MaxConns leaves for
// the listener, epoll, stdio, HTTP requests and the spare accept descriptor.
const ReservedFDs = 64

func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = "/ws"
	}
	if c.PushInterval <= 0 {
		c.PushInterval = 5 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers()
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 1 << 20
	}
	c.MaxMessage = min(c.MaxMessage, 1<<30)
	if c.MaxBuffered <= 0 {
		c.MaxBuffered = 256 << 20
	}
	c.MaxBuffered = max(c.MaxBuffered, 2<<classOf(c.MaxMessage))
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns()
	}
	if c.MaxOutbound <= 0 {
		c.MaxOutbound = 64 << 10
	}
	// A queue holds at most MaxOutbound counted bytes plus the rest of one
	// whole frame (see queue.go); its offsets are int32 and its buffer
	// comes from a size class of at most 2 GiB, so the sum must stay below
	// 2^31.
	c.MaxOutbound = min(c.MaxOutbound, 1<<31-1-ws.MaxHeaderSize-c.MaxMessage)
	if c.DeflateMin <= 0 {
		c.DeflateMin = DefaultDeflateMin
	}
	if c.SendBuffer == 0 {
		c.SendBuffer = DefaultSendBuffer
	}
	if c.RecvBuffer == 0 {
		c.RecvBuffer = DefaultRecvBuffer
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 2 * time.Second
	}
	if c.App == nil {
		c.App = nopApp{}
	}
	if c.Handler == nil {
		c.Handler = http.NotFoundHandler()
	}
	if c.OnError == nil {
		c.OnError = func(error) {}
	}

	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = 10 * time.Second
	}
	if c.MaxHTTPConns <= 0 {
		c.MaxHTTPConns = 256
	}
	if c.OffloadWorkers <= 0 {
		c.OffloadWorkers = DefaultOffloadWorkers
	}
	if c.OffloadBacklog <= 0 {
		c.OffloadBacklog = DefaultOffloadBacklog
	}
	return c
}

// DefaultMaxConns is the open-file limit less ReservedFDs (at least 1).
func DefaultMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024 - ReservedFDs
	}
	n := int(min(rl.Cur, 1<<30)) - ReservedFDs
	return max(n, 1)
}

// nopApp is the default App: it says nothing.
type nopApp struct{}

func (nopApp) OnOpen(Conn)                    {}
func (nopApp) OnMessage(Conn, Opcode, []byte) {}
func (nopApp) OnClose(Conn, CloseCode)        {}
