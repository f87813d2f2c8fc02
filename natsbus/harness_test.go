package natsbus

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/wsmill/wsmill/server"
)

// startNATS runs a real nats-server in this process on 127.0.0.1:port
// (0: a free one) until stopped or the test ends.
func startNATS(t testing.TB, port int) *testNATS {
	t.Helper()
	if port == 0 {
		port = -1 // nats-server's "any free port"
	}
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return &testNATS{ns}
}

// testNATS is an in-process nats-server.
type testNATS struct {
	*natsserver.Server
}

// subs is the number of subscriptions its client connections hold. The
// server's own (its system account's) are not counted, and are not
// subtracted from a total either: those are set up in the background,
// and a baseline taken at start was, under load, taken too early.
func (ns *testNATS) subs() uint32 {
	cz, err := ns.Connz(&natsserver.ConnzOptions{Limit: 1 << 20})
	if err != nil {
		return 0
	}
	var n uint32
	for _, c := range cz.Conns {
		n += c.NumSubs
	}
	return n
}

func natsPort(ns *testNATS) int { return ns.Addr().(*net.TCPAddr).Port }

func natsURL(port int) string { return "nats://127.0.0.1:" + strconv.Itoa(port) }

// roomApp is the test application: a client on /ws?topic=T subscribes to
// T; each message it sends is published to T through the bridge.
type roomApp struct {
	mu sync.Mutex
	b  *Bridge
	p  server.Policy
}

func (a *roomApp) bridge() *Bridge { a.mu.Lock(); defer a.mu.Unlock(); return a.b }

func (a *roomApp) OnOpen(c server.Conn) { c.Server().Subscribe(c, c.Value().(string)) }

func (a *roomApp) OnMessage(c server.Conn, op server.Opcode, payload []byte) {
	a.bridge().Publish(c.Value().(string), op, payload, a.p)
}

func (a *roomApp) OnClose(server.Conn, server.CloseCode) {}

type instance struct {
	srv    *server.Server
	bridge *Bridge
	addr   string
}

// startInstance runs a wsmill server with a bridge to natsURL.
func startInstance(t testing.TB, url string, cfg Config, mods ...func(*server.Config)) *instance {
	t.Helper()
	app := &roomApp{}
	scfg := server.Config{
		App:     app,
		Workers: 2,
		OnUpgrade: func(r *server.Request) (any, int) {
			q, _ := parseQuery(r.Query())
			if q == "" {
				return nil, 400
			}
			return q, 0
		},
	}
	for _, m := range mods {
		m(&scfg)
	}
	srv, err := server.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.URL = url
	if cfg.ReconnectWait == 0 {
		cfg.ReconnectWait = 50 * time.Millisecond
	}
	b, err := New(srv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	app.mu.Lock()
	app.b = b
	app.mu.Unlock()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		b.Close()
	})
	return &instance{srv: srv, bridge: b, addr: ln.Addr().String()}
}

func parseQuery(q []byte) (string, error) {
	v, err := url.ParseQuery(string(q))
	return v.Get("topic"), err
}

// join connects a gorilla client to topic on in and waits until the
// instance's bridge holds the topic's NATS subscription (when wantSub).
func join(t testing.TB, in *instance, topic string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+in.addr+"/ws?topic="+url.QueryEscape(topic), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", topic, err)
	}
	t.Cleanup(func() { c.Close() })
	waitFor(t, 5*time.Second, "the subscription of "+topic, func() bool { return in.srv.Subscribers(topic) > 0 })
	return c
}

// waitSubscribed waits until ns has n subscriptions in all.
func waitNATSSubs(t testing.TB, ns *testNATS, n uint32) {
	t.Helper()
	waitFor(t, 5*time.Second, "nats-server to hold "+strconv.Itoa(int(n))+" subscriptions", func() bool {
		return ns.subs() == n
	})
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// read returns the next message, or fails after d.
func read(t testing.TB, c *websocket.Conn, d time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	_, m, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(m)
}

// silent checks that nothing arrives on c within d.
func silent(t testing.TB, c *websocket.Conn, d time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	if _, m, err := c.ReadMessage(); err == nil {
		t.Fatalf("%s: got %q; want nothing", what, m)
	}
}

func send(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// rawNATS is a plain NATS client, for what a foreign publisher sends.
func rawNATS(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
