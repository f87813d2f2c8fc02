// Command wsmill runs the WebSocket server: it upgrades GET /ws on the raw
// TCP connection, greets with "Hi Client!", echoes every message, pushes the
// server time every -push-interval, and serves the demo page at / and a
// health check at /healthz on the same port; /metrics is on -metrics-addr.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/wsmill/wsmill/natsbus"
	"github.com/wsmill/wsmill/server"
)

//go:embed web/index.html
var indexHTML []byte

func main() {
	if err := run(os.Args[1:]); err != nil {
		slog.Error("wsmill", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("wsmill", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "listen address; a comma list serves several addresses from one server")
	push := fs.Duration("push-interval", 5*time.Second, "time push period")
	workers := fs.Int("workers", server.DefaultWorkers(), "event loops (one epoll instance and goroutine each); default one per core")
	maxMsg := fs.Int("max-message", 1<<20, "largest accepted message in bytes")
	maxBuffered := fs.Int("max-buffered", 256<<20, "bytes held, over all connections, for frames and messages not yet complete; a client whose next chunk would pass it is closed with 1013")
	maxConns := fs.Int("max-conns", server.DefaultMaxConns(), "connection cap (beyond it the upgrade answers 503); default: open-file limit less reserve")
	maxOut := fs.Int("max-outbound", 64<<10, "bytes one connection may have waiting to be sent; past it pushes are skipped and an echo closes the client")
	sndbuf := fs.Int("sndbuf", server.DefaultSendBuffer, "kernel send buffer of every connection (SO_SNDBUF; the kernel doubles it): bounds what a client that stops reading makes the machine hold; negative: kernel autotuning (up to tcp_wmem max)")
	rcvbuf := fs.Int("rcvbuf", server.DefaultRecvBuffer, "kernel receive buffer of every connection (SO_RCVBUF; the kernel doubles it): bounds what fast senders make the machine hold while the workers are behind; negative: kernel autotuning (up to tcp_rmem max)")
	hsTimeout := fs.Duration("handshake-timeout", 5*time.Second, "time a new connection has, in total, to complete its HTTP request")
	idle := fs.Duration("idle-timeout", 60*time.Second, "ping a connection silent this long; close it if silent as long again (0 or less: off)")
	closeTimeout := fs.Duration("close-timeout", 2*time.Second, "how long to wait for the peer's answer to our Close")
	var origins originList
	fs.Var(&origins, "origin", "Origin allowed besides the page's own (repeatable, or a comma-separated list); '*' allows every origin; default: same-origin only (and clients sending no Origin)")
	drain := fs.Duration("drain-timeout", 3*time.Second, "how long shutdown waits for clients to answer Close 1001")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this separate address (off when empty)")
	metricsAddr := fs.String("metrics-addr", defaultMetricsAddr, "serve /metrics (Prometheus) on this separate address, the operators' network's, not the public port (off when empty; port 0 picks one, logged)")
	reusePort := fs.Bool("reuseport", false, "set SO_REUSEPORT so several processes can listen on -addr; the kernel spreads connections across them")

	httpTimeout := fs.Duration("http-timeout", 10*time.Second, "time to write the response to a plain HTTP request, from the end of its header")
	maxHTTP := fs.Int("max-http-conns", 256, "plain HTTP connections served at once; past it a request gets 503")
	offWorkers := fs.Int("offload-workers", server.DefaultOffloadWorkers, "goroutines running the application's blocking work (Conn.Go): at most this many block at once")
	offBacklog := fs.Int("offload-backlog", server.DefaultOffloadBacklog, "jobs one connection may have handed to Conn.Go and not finished; past it Go reports skipped")

	natsURL := fs.String("nats", "", "NATS URL(s), comma-separated (credentials may be in it; never logged): the /chat rooms span every instance on this NATS; empty: this instance only")
	natsPrefix := fs.String("nats-prefix", "wsmill.", "NATS subject prefix of the bridged topics")
	natsMax := fs.Int("nats-max-payload", 64<<10, "largest message that crosses NATS in bytes; a bigger one is delivered on this instance only")
	chatMax := fs.Int("chat-max", defaultChatMax, "longest /chat message in bytes; a longer one closes the client with 1009")

	deflate := fs.Bool("deflate", false, "accept permessage-deflate (RFC 7692, no context takeover either way): compresses messages of -deflate-min bytes or more")
	deflateMin := fs.Int("deflate-min", server.DefaultDeflateMin, "smallest payload sent compressed when -deflate is on; smaller ones go plain")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}

	procs := server.SetProcs(*workers)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var srv *server.Server
	var bus *natsbus.Bridge
	ch := &chat{maxText: *chatMax}
	mux := newMux(func() *server.Server { return srv })
	busMetrics := newBusCollector(ch, func() *natsbus.Bridge { return bus })
	srv, err := server.New(withDemoChat(server.Config{
		PushInterval:     *push,
		Workers:          *workers,
		MaxMessage:       *maxMsg,
		MaxBuffered:      *maxBuffered,
		MaxConns:         *maxConns,
		MaxOutbound:      *maxOut,
		SendBuffer:       *sndbuf,
		RecvBuffer:       *rcvbuf,
		HandshakeTimeout: *hsTimeout,
		IdleTimeout:      idleFlag(*idle),
		CloseTimeout:     *closeTimeout,
		Origins:          origins,
		Handler:          mux,
		OnError:          func(err error) { logServerError(log, err) },

		HTTPTimeout:  *httpTimeout,
		MaxHTTPConns: *maxHTTP,

		OffloadWorkers: *offWorkers,
		OffloadBacklog: *offBacklog,
		Deflate:        *deflate,
		DeflateMin:     *deflateMin,
	}, ch))
	if err != nil {
		return err
	}
	if *natsURL != "" {
		// New returns at once even when NATS is down: the instance serves
		// and connects once NATS is up (README, "Several instances").
		bus, err = natsbus.New(srv, natsbus.Config{
			URL: *natsURL, Prefix: *natsPrefix, MaxPayload: *natsMax,
			OnError: func(err error) { log.Warn("nats", "err", err) },
		})
		if err != nil {
			return err
		}
		defer bus.Close()
		ch.bus = bus
		log.Info("nats bridge", "url", natsbus.Redact(*natsURL), "prefix", *natsPrefix, "max_payload", *natsMax)
	}

	lns, err := listenAll(*addr, *reusePort)
	if err != nil {
		return err
	}
	// Before "wsmill started": a process that says it started holds
	// every descriptor it listens on.
	if *metricsAddr != "" {
		// With -reuseport the metrics address is shared too, so that a
		// second process (a rolling restart) can start beside this one.
		mln, err := listen(*metricsAddr, *reusePort)
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return fmt.Errorf("-metrics-addr: %w", err)
		}
		ms := &http.Server{Handler: newMetricsMux(func() *server.Server { return srv }, busMetrics), ReadHeaderTimeout: *hsTimeout, WriteTimeout: *httpTimeout}
		defer ms.Close()
		log.Info("metrics listening", "url", "http://"+mln.Addr().String()+"/metrics")
		go ms.Serve(mln)
	}

	cfg := srv.Config()
	log.Info("wsmill started", "addr", addrsLog(lns), "push_interval", cfg.PushInterval,
		"workers", cfg.Workers, "max_message", cfg.MaxMessage, "max_buffered", cfg.MaxBuffered, "max_conns", cfg.MaxConns,
		"max_outbound", cfg.MaxOutbound, "sndbuf", cfg.SendBuffer, "rcvbuf", cfg.RecvBuffer, "handshake_timeout", cfg.HandshakeTimeout,
		"idle_timeout", cfg.IdleTimeout, "close_timeout", cfg.CloseTimeout, "origins", originsLog(cfg.Origins),
		"http_timeout", cfg.HTTPTimeout, "max_http_conns", cfg.MaxHTTPConns,
		"offload_workers", cfg.OffloadWorkers, "offload_backlog", cfg.OffloadBacklog, "gomaxprocs", procs,
		"deflate", cfg.Deflate, "deflate_min", cfg.DeflateMin)
	if slices.Contains(cfg.Origins, "*") {
		log.Warn("every Origin is allowed (-origin '*'): any site's page may connect in its user's name")
	}

	if *pprofAddr != "" {
		go func() {
			// http.DefaultServeMux carries net/http/pprof's handlers only:
			// the public mux is a separate one.
			log.Info("pprof listening", "addr", *pprofAddr)
			if err := http.ListenAndServe(*pprofAddr, http.DefaultServeMux); err != nil {
				log.Error("pprof", "err", err)
			}
		}()
	}

	served := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { served <- srv.Serve(ln) }()
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String(), "open", srv.Stats().Open)
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	err = srv.Shutdown(ctx)
	st := srv.Stats()
	log.Info("wsmill stopped", "upgraded", st.Upgraded, "rejected", st.Rejected, "pushes", st.Pushes,
		"pushes_skipped", st.PushesSkipped, "left_open", st.Live)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// originList is a repeatable flag that also takes comma-separated lists.
type originList []string

// logServerError logs what the server reports through Config.OnError: an
// application panic at error level with its fields (the stack as one
// attribute, not a line per frame), anything else as a warning.
func logServerError(log *slog.Logger, err error) {
	var pe *server.PanicError
	if errors.As(err, &pe) {
		log.Error("application panic", "callback", pe.Callback, "fd", pe.FD,
			"remote", pe.RemoteAddr.String(), "value", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
		return
	}
	log.Warn("server", "err", err)
}

func (o *originList) String() string { return strings.Join(*o, ",") }

func (o *originList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*o = append(*o, s)
		}
	}
	return nil
}

func originsLog(o []string) string {
	if len(o) == 0 {
		return "*"
	}
	return strings.Join(o, ",")
}

// idleFlag maps the flag's "0 or less: off" to the Config's negative.
func idleFlag(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// newMux serves the plain HTTP side of the public port: the demo page,
// /healthz and /stats (a JSON snapshot for the page's chart). srv returns
// the server once it exists (the mux is built first, because the server's
// Config takes it). /metrics is on its own address (newMetricsMux).
func newMux(srv func() *server.Server) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(indexHTML)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		s := srv()
		if s == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(statsJSON(s))
	})
	return mux
}

// defaultMetricsAddr keeps /metrics on the loopback interface: what it
// tells (clients, limits, error rates) is for the operator, who can scrape
// it there or choose an address of the internal network.
const defaultMetricsAddr = "127.0.0.1:9180"

// newMetricsMux serves GET /metrics (Prometheus text format) for the
// operators' address.
func newMetricsMux(srv func() *server.Server, extra ...prometheus.Collector) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(srv, extra...))
	return mux
}

// statsSnapshot is the JSON of GET /stats, which the demo page charts.
type statsSnapshot struct {
	Time          string  `json:"time"`
	UptimeSeconds float64 `json:"uptime_s"`
	Open          int64   `json:"open"`
	Live          int64   `json:"live"`
	Upgraded      uint64  `json:"upgraded"`
	Rejected      uint64  `json:"rejected"`
	MessagesIn    uint64  `json:"messages_in"`
	MessagesOut   uint64  `json:"messages_out"`
	Pushes        uint64  `json:"pushes"`
	PushesSkipped uint64  `json:"pushes_skipped"`
}

func statsJSON(s *server.Server) statsSnapshot {
	st := s.Stats()
	return statsSnapshot{
		Time:          time.Now().Format(TimeLayout),
		UptimeSeconds: st.Uptime.Seconds(),
		Open:          st.Open,
		Live:          st.Live,
		Upgraded:      st.Upgraded,
		Rejected:      st.Rejected,
		MessagesIn:    st.MessagesIn,
		MessagesOut:   st.MessagesOut,
		Pushes:        st.Pushes,
		PushesSkipped: st.PushesSkipped,
	}
}

// listen opens the TCP listener, with SO_REUSEPORT when asked: then several
// wsmill processes can serve one address (each under its own open-file
// limit and with its own epoll loop), the kernel spreading new connections
// across them.
// listenAll listens on every address of a comma list (-addr), or on none
// if one fails.
func listenAll(addrs string, reusePort bool) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		ln, err := listen(a, reusePort)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		return nil, fmt.Errorf("-addr %q: no address", addrs)
	}
	return lns, nil
}

func addrsLog(lns []net.Listener) string {
	s := make([]string, len(lns))
	for i, ln := range lns {
		s[i] = ln.Addr().String()
	}
	return strings.Join(s, ",")
}

func listen(addr string, reusePort bool) (net.Listener, error) {
	var lc net.ListenConfig
	if reusePort {
		lc.Control = func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			})
			if err != nil {
				return err
			}
			return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
		}
	}
	return lc.Listen(context.Background(), "tcp", addr)
}
