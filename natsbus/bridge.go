package natsbus

import (
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsmill/wsmill/server"
)

// Config holds the bridge's settings; zero fields take the defaults named.
type Config struct {
	// URL is the NATS server, or several comma-separated ("nats://a:4222,
	// nats://b:4222"); credentials may be in it (nats://user:pass@host,
	// nats://token@host; tls:// for TLS). Required. The bridge never
	// reports a URL with its credentials: Redact gives the form to log.
	URL string

	// Prefix is put before every topic to make its NATS subject, so that
	// several applications can share one NATS. Tokens ending in a dot.
	// Default "wsmill.".
	Prefix string

	// MaxPayload is the largest WebSocket payload that crosses the bus, in
	// bytes: a bigger Publish is delivered locally only, and a bigger
	// message from the bus is dropped; both counted. Default 64 KiB (and
	// never more than the NATS server's max_payload, 1 MiB by default,
	// which it enforces on its own).
	MaxPayload int

	// Backlog is how many messages from the bus may wait for the
	// delivery goroutine. Past it NATS's client drops them (a slow
	// consumer) and they are counted: the bridge never blocks NATS's
	// reader. Default 8192.
	Backlog int

	// ReconnectWait is the pause between attempts to reach NATS (with
	// up to ReconnectWait/2 of jitter, so that instances do not come back
	// in step). Default 1s.
	ReconnectWait time.Duration

	// Name is the connection's name in NATS's monitoring. Default "wsmill".
	Name string

	// Options are more nats.go options, applied after the bridge's own:
	// credentials (nats.UserCredentials, nats.Nkey, nats.Token), TLS
	// (nats.RootCAs, nats.ClientCert). The bridge relies on NoEcho,
	// ReconnectBufSize(-1) and RetryOnFailedConnect: options that change
	// them change the guarantees in the package doc.
	Options []nats.Option

	// OnError reports what the bridge recovers from by itself: a lost
	// connection, a slow consumer, a failed subscription. Called from the
	// bridge's or nats.go's goroutines; must not block. The error never
	// carries credentials. Default: ignore.
	OnError func(error)
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "wsmill."
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 64 << 10
	}
	if c.Backlog <= 0 {
		c.Backlog = 8192
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = time.Second
	}
	if c.Name == "" {
		c.Name = "wsmill"
	}
	if c.OnError == nil {
		c.OnError = func(error) {}
	}
	return c
}

// Errors Publish returns when a frame went to the local subscribers only.
var (
	ErrDisconnected = errors.New("natsbus: not connected to NATS; delivered locally only")
	ErrTooBig       = errors.New("natsbus: payload over MaxPayload; delivered locally only")
	ErrTopic        = errors.New("natsbus: topic cannot be a NATS subject (see ValidTopic); delivered locally only")
	ErrClosed       = errors.New("natsbus: bridge closed; delivered locally only")
)

// Bridge connects one Server's topics to NATS. Make it with New before
// the Server serves; publish through Bridge.Publish instead of
// Server.Publish for topics that span instances.
type Bridge struct {
	srv    *server.Server
	cfg    Config
	nc     *nats.Conn
	msgs   chan *nats.Msg // every subscription delivers here (nats.go's reader goroutine)
	kick   chan struct{}  // capacity 1: the watcher's "dirty holds something"
	done   chan struct{}
	exited chan struct{}

	mu      sync.Mutex
	dirty   map[string]struct{}           // topics whose local subscriber count changed
	spare   map[string]struct{}           // the other dirty map, owned by run between swaps
	subs    map[string]*nats.Subscription // owned by run; under mu for Stats
	retired int64                         // slow-consumer drops of unsubscribed subscriptions
	closed  bool

	bufs sync.Pool // *[]byte scratch for the header byte + payload

	published, received, reconnects atomic.Uint64
	dropped                         [numReasons]atomic.Uint64
}

// New connects srv's topics to NATS at cfg.URL and returns at once: when
// NATS is not reachable yet, the bridge keeps trying every ReconnectWait
// and the server serves meanwhile (local delivery works; cross-instance
// publishes are dropped and counted until the first connect). It calls
// srv.WatchTopics, so call it before srv.Serve. An error means the
// configuration is wrong (no URL, a bad prefix, an option nats.go
// refuses), never that NATS is down.
func New(srv *server.Server, cfg Config) (*Bridge, error) {
	cfg = cfg.withDefaults()
	if cfg.URL == "" {
		return nil, errors.New("natsbus: Config.URL is empty")
	}
	if !validPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("natsbus: prefix %q must be [A-Za-z0-9_-] tokens each ending in a dot", cfg.Prefix)
	}
	b := &Bridge{
		srv:    srv,
		cfg:    cfg,
		msgs:   make(chan *nats.Msg, cfg.Backlog),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
		dirty:  make(map[string]struct{}),
		spare:  make(map[string]struct{}),
		subs:   make(map[string]*nats.Subscription),
	}
	b.bufs.New = func() any { p := make([]byte, 0, 1+cfg.MaxPayload); return &p }
	opts := []nats.Option{
		nats.Name(cfg.Name),
		// A publish reaches this instance's subscribers once, from
		// Publish itself; NATS must not send it back.
		nats.NoEcho(),
		// Serve while NATS is down, connect when it comes up.
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.ReconnectJitter(cfg.ReconnectWait/2, cfg.ReconnectWait/2),
		// No outage buffer: a publish while disconnected is dropped and
		// counted, never sent late to the instances that happen to have
		// resubscribed already (see the package doc).
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				cfg.OnError(fmt.Errorf("natsbus: disconnected from NATS: %w", err))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { b.reconnects.Add(1) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				cfg.OnError(fmt.Errorf("natsbus: delivery is behind (more than %d messages waiting): dropping; counted in wsmill_bus_dropped_total{reason=\"slow_consumer\"}", cfg.Backlog))
				return
			}
			cfg.OnError(fmt.Errorf("natsbus: %w", err))
		}),
	}
	nc, err := nats.Connect(cfg.URL, append(opts, cfg.Options...)...)
	if err != nil {
		// A parse error quotes the whole URL, password included: keep only
		// its reason. nats.go's other errors name the server by host.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("natsbus: %s: %w", Redact(cfg.URL), err)
	}
	b.nc = nc
	srv.WatchTopics(b.watch)
	go b.run()
	return b, nil
}

// Redact is url with every password or token replaced by "xxxxx", for logs.
func Redact(u string) string {
	var out []byte
	for i, part := range splitComma(u) {
		if i > 0 {
			out = append(out, ',')
		}
		p, err := url.Parse(part)
		if err != nil {
			out = append(out, "(unparsable URL)"...)
			continue
		}
		if p.User != nil {
			if _, has := p.User.Password(); has {
				p.User = url.UserPassword(p.User.Username(), "xxxxx")
			} else {
				p.User = url.User("xxxxx") // a token
			}
		}
		out = append(out, p.Redacted()...)
	}
	return string(out)
}

func splitComma(s string) []string {
	var parts []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != ',' {
			i++
		}
		parts = append(parts, s[:i])
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return parts
}

// watch is the Server's topic watcher: it runs on whatever goroutine
// changed the topic, so it only records the topic and wakes run.
func (b *Bridge) watch(topic string) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.dirty[topic] = struct{}{}
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default: // run is already due to look
	}
}

// run is the bridge's one goroutine: it reconciles NATS subscriptions with
// the topics that have local subscribers and delivers what NATS sends.
func (b *Bridge) run() {
	defer close(b.exited)
	for {
		select {
		case <-b.done:
			return
		case <-b.kick:
			b.reconcile()
		case m := <-b.msgs:
			b.deliver(m.Subject, m.Data)
		}
	}
}

// reconcile subscribes to each dirty topic that has local subscribers and
// is not subscribed, and unsubscribes each that is and has none. nats.go
// writes SUB and UNSUB without waiting for the server, and while
// disconnected it remembers the subscriptions and sends them all again
// once reconnected, so this never blocks on NATS.
func (b *Bridge) reconcile() {
	b.mu.Lock()
	work := b.dirty
	b.dirty = b.spare
	b.mu.Unlock()
	for topic := range work {
		delete(work, topic)
		want := b.srv.Subscribers(topic) > 0
		sub, have := b.subs[topic] // only run writes subs: no lock to read
		switch {
		case want && !have:
			if !ValidTopic(topic) {
				b.dropped[reasonInvalidTopic].Add(1)
				continue
			}
			// The channel is the backlog (nats.go's pending limits apply
			// to callback subscriptions only): full, nats.go drops.
			s, err := b.nc.ChanSubscribe(b.cfg.Prefix+topic, b.msgs)
			if err != nil {
				b.cfg.OnError(fmt.Errorf("natsbus: subscribe %q: %w", topic, err))
				continue
			}
			b.mu.Lock()
			b.subs[topic] = s
			b.mu.Unlock()
		case !want && have:
			n, _ := sub.Dropped()
			if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				b.cfg.OnError(fmt.Errorf("natsbus: unsubscribe %q: %w", topic, err))
			}
			b.mu.Lock()
			b.retired += int64(n)
			delete(b.subs, topic)
			b.mu.Unlock()
		}
	}
	b.spare = work // empty again: the next swap reuses it
}

// deliver publishes a message from the bus to the local subscribers of
// its topic: one Frame (one copy of the payload) whatever their number,
// and Server.Publish sends that Frame to each without a copy or an
// allocation.
func (b *Bridge) deliver(subject string, data []byte) {
	b.received.Add(1)
	if len(subject) <= len(b.cfg.Prefix) || subject[:len(b.cfg.Prefix)] != b.cfg.Prefix {
		b.dropped[reasonUnknownTopic].Add(1)
		return
	}
	topic := subject[len(b.cfg.Prefix):]
	if len(data) > 1+b.cfg.MaxPayload {
		b.dropped[reasonOversized].Add(1)
		return
	}
	op, p, payload, ok := decode(data)
	if !ok {
		b.dropped[reasonMalformed].Add(1)
		return
	}
	if b.srv.Subscribers(topic) == 0 {
		// Unsubscribed meanwhile (the UNSUB crossed the message), or a
		// subject nobody here asked for.
		b.dropped[reasonUnknownTopic].Add(1)
		return
	}
	b.srv.Publish(topic, server.NewFrame(op, payload), p)
}

// Publish sends payload as one message of type op to every subscriber of
// topic on every instance: here at once (Server.Publish, whose result it
// returns) and, through NATS, on the others; NATS does not send it back
// here. Messages published from one goroutine reach each subscriber, on
// every instance, in that order. When the message cannot cross the bus
// (not connected, over MaxPayload, a topic that is no subject) it is
// delivered here only, counted as dropped, and the error says why.
// Safe from any goroutine (an App method included); it never blocks: the
// NATS client buffers the write and its own goroutine flushes it.
func (b *Bridge) Publish(topic string, op server.Opcode, payload []byte, p server.Policy) (server.FanoutResult, error) {
	// The bus first: nats.go only copies the message into its buffer
	// and wakes its flusher, so the other instances start their fan-out
	// while this one writes its own subscribers, instead of after.
	err := b.publishBus(topic, op, payload, p)
	return b.srv.Publish(topic, server.NewFrame(op, payload), p), err
}

func (b *Bridge) publishBus(topic string, op server.Opcode, payload []byte, p server.Policy) error {
	switch {
	case len(payload) > b.cfg.MaxPayload:
		b.dropped[reasonTooBig].Add(1)
		return ErrTooBig
	case !ValidTopic(topic):
		b.dropped[reasonInvalidTopic].Add(1)
		return ErrTopic
	case !b.nc.IsConnected():
		if b.nc.IsClosed() {
			b.dropped[reasonClosed].Add(1)
			return ErrClosed
		}
		b.dropped[reasonDisconnected].Add(1)
		return ErrDisconnected
	}
	bp := b.bufs.Get().(*[]byte)
	buf := append(append((*bp)[:0], encodeHeader(op, p)), payload...)
	// The subject is built in the same scratch buffer's tail would save
	// one allocation; nats.go copies both into its write buffer before
	// returning, so the scratch goes back at once.
	err := b.nc.Publish(b.cfg.Prefix+topic, buf)
	*bp = buf[:0]
	b.bufs.Put(bp)
	if err != nil {
		if errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrConnectionReconnecting) {
			b.dropped[reasonDisconnected].Add(1)
			return ErrDisconnected
		}
		if errors.Is(err, nats.ErrMaxPayload) {
			b.dropped[reasonTooBig].Add(1)
			return ErrTooBig
		}
		b.dropped[reasonClosed].Add(1)
		return fmt.Errorf("natsbus: publish: %w", err)
	}
	b.published.Add(1)
	return nil
}

// Close unsubscribes from NATS, closes the connection and stops the
// bridge's goroutine; the Server's topics go on locally. Call it before or
// after Server.Shutdown.
func (b *Bridge) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	close(b.done)
	<-b.exited
	b.nc.Close()
}
