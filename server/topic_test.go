package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// topicApp greets, then takes commands from its clients: "+t" subscribes
// the sender to topic t, "-t" unsubscribes it, and each is answered with
// the command and the result ("+t true"). onClose, when set, runs in
// OnClose.
type topicApp struct {
	mu      sync.Mutex
	conns   []Conn
	onClose func(c Conn, code CloseCode)
}

func (a *topicApp) OnOpen(c Conn) {
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
	c.SendFrame(greeting, Reliable)
}

func (a *topicApp) OnMessage(c Conn, op Opcode, p []byte) {
	if len(p) < 2 {
		return
	}
	var ok bool
	switch t := string(p[1:]); p[0] {
	case '+':
		ok = c.Server().Subscribe(c, t)
	case '-':
		ok = c.Server().Unsubscribe(c, t)
	default:
		return
	}
	c.Send(OpText, fmt.Appendf(nil, "%s %v", p, ok), Reliable)
}

func (a *topicApp) OnClose(c Conn, code CloseCode) {
	if a.onClose != nil {
		a.onClose(c, code)
	}
}

// topicCmd sends a command and waits for its answer.
func topicCmd(t *testing.T, c libConn, cmd, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.write(ctx, libText, []byte(cmd)); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if _, p, err := c.read(ctx); err != nil || string(p) != want {
		t.Fatalf("%s: got %q, %v; want %q", cmd, p, err, want)
	}
}

// topicExpect reads the next message and checks it.
func topicExpect(t *testing.T, c libConn, who, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, p, err := c.read(ctx); err != nil || string(p) != want {
		t.Fatalf("%s: got %q, %v; want %q", who, p, err, want)
	}
}

// TestTopicDelivery: real clients subscribe through the application, a
// goroutine of the test publishes; every subscriber gets every frame once
// and in order, and nobody else gets any.
func TestTopicDelivery(t *testing.T) {
	for _, cl := range libClients {
		t.Run(cl.name, func(t *testing.T) {
			s, addr := startServer(t, Config{App: &topicApp{}, Workers: 2})
			a, b, c := libDial(t, cl, addr), libDial(t, cl, addr), libDial(t, cl, addr)
			topicCmd(t, a, "+news", "+news true")
			topicCmd(t, b, "+news", "+news true")
			topicCmd(t, b, "+news", "+news true") // twice: still one delivery
			topicCmd(t, b, "+sport", "+sport true")
			topicCmd(t, c, "+sport", "+sport true")
			if n := s.Subscribers("news"); n != 2 {
				t.Fatalf("Subscribers(news) = %d; want 2", n)
			}
			if n := s.Subscribers("weather"); n != 0 {
				t.Fatalf("Subscribers(weather) = %d; want 0", n)
			}
			const n = 200
			for i := range n {
				f := NewFrame(OpText, []byte("news "+strconv.Itoa(i)))
				if r := s.Publish("news", f, Reliable); r.Sent() != 2 || r.Skipped+r.Closed != 0 {
					t.Fatalf("Publish %d: got %+v; want 2 sent", i, r)
				}
			}
			if r := s.Publish("weather", NewFrame(OpText, []byte("rain")), Reliable); r != (FanoutResult{}) {
				t.Fatalf("Publish to nobody: got %+v; want zero", r)
			}
			s.Publish("sport", NewFrame(OpText, []byte("goal")), Reliable)
			for i := range n {
				topicExpect(t, a, "a", "news "+strconv.Itoa(i))
				topicExpect(t, b, "b", "news "+strconv.Itoa(i))
			}
			topicExpect(t, b, "b", "goal")
			topicExpect(t, c, "c", "goal")

			topicCmd(t, b, "-news", "-news true")
			topicCmd(t, b, "-news", "-news false")
			topicCmd(t, c, "-news", "-news false")
			s.Publish("news", NewFrame(OpText, []byte("late news")), Reliable)
			s.Publish("sport", NewFrame(OpText, []byte("end")), Reliable)
			topicExpect(t, a, "a", "late news")
			topicExpect(t, b, "b", "end") // not "late news"
			topicExpect(t, c, "c", "end")
			if got, want := s.Subscribers("news"), 1; got != want {
				t.Fatalf("Subscribers(news) = %d; want %d", got, want)
			}
		})
	}
}

// TestTopicCloseLeaves: however a connection ends, it is out of its topics
// before OnClose runs (Subscribe refuses it there), and once every
// connection is gone the topic table is empty.
func TestTopicCloseLeaves(t *testing.T) {
	for _, tt := range []struct {
		name string
		end  func(t *testing.T, c libConn, h Conn)
	}{
		{"client close", func(t *testing.T, c libConn, h Conn) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.closeNormal(ctx); err != nil {
				t.Error(err)
			}
		}},
		{"client abort", func(t *testing.T, c libConn, h Conn) { c.abort() }},
		{"server close", func(t *testing.T, c libConn, h Conn) { h.Close(CloseNormal, "bye") }},
		{"overflow", func(t *testing.T, c libConn, h Conn) {
			// The client does not read: Reliable publishes past
			// MaxOutbound close it with 1008.
			big := NewFrame(OpBinary, make([]byte, 64<<10))
			for range 1000 {
				if r := h.Server().Publish("room", big, Reliable); r.Closed > 0 {
					return
				}
			}
			t.Error("no overflow")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := &topicApp{}
			type seen struct {
				others int
				again  bool
			}
			closes := make(chan seen, 1)
			app.onClose = func(c Conn, _ CloseCode) {
				s := c.Server()
				closes <- seen{s.Subscribers("room") + s.Subscribers("solo"), s.Subscribe(c, "room")}
			}
			s, addr := startServer(t, Config{App: app, MaxOutbound: 64 << 10, SendBuffer: 16 << 10})
			c := libDial(t, libClients[0], addr)
			topicCmd(t, c, "+room", "+room true")
			topicCmd(t, c, "+solo", "+solo true")
			app.mu.Lock()
			h := app.conns[0]
			app.mu.Unlock()
			tt.end(t, c, h)
			select {
			case got := <-closes:
				if got.others != 0 || got.again {
					t.Errorf("in OnClose: %d subscriptions left, Subscribe = %v; want 0, false", got.others, got.again)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no OnClose")
			}
			c.abort() // a client that does not read would hold the close for CloseTimeout
			waitFor(t, 5*time.Second, "the connection to go", func() bool { return s.live.Load() == 0 })
			if n, k := s.topics.n.Load(), s.topics.subs.Load(); n != 0 || k != 0 {
				t.Errorf("%d topics, %d subscriptions left; want none", n, k)
			}
			if s.Subscribe(h, "room") || s.Unsubscribe(h, "room") {
				t.Error("a closed handle subscribed or unsubscribed")
			}
		})
	}
}

// topicSeq parses "p<publisher> <seq>".
func topicSeq(p []byte) (pub, seq int, ok bool) {
	a, b, ok := strings.Cut(string(p), " ")
	if !ok || len(a) < 2 || a[0] != 'p' {
		return 0, 0, false
	}
	pub, err1 := strconv.Atoi(a[1:])
	seq, err2 := strconv.Atoi(b)
	return pub, seq, err1 == nil && err2 == nil
}

// TestTopicRace: publishers, subscribers churning on one topic and
// clients dropping, all at once (run it with -race), with the topic under
// broadcastSerial (the publisher writes every share) and past it (shares
// go to the fan-out goroutines too). Each client gets each publisher's
// frames at most once and in increasing order; at the end the table is
// empty.
func TestTopicRace(t *testing.T) {
	t.Run("serial", func(t *testing.T) { topicRace(t, 24) })
	t.Run("parallel", func(t *testing.T) { topicRace(t, 3*broadcastSerial) }) // about half subscribed at a time
}

func topicRace(t *testing.T, clients int) {
	app := &topicApp{}
	s, addr := startServer(t, Config{App: app, Workers: 2})
	const pubs, frames = 3, 300
	var conns []libConn
	for i := range clients {
		conns = append(conns, libDial(t, libClients[i%2], addr))
	}
	waitFor(t, 5*time.Second, "the opens", func() bool {
		app.mu.Lock()
		defer app.mu.Unlock()
		return len(app.conns) == clients
	})
	app.mu.Lock()
	handles := append([]Conn(nil), app.conns...)
	app.mu.Unlock()

	var readers sync.WaitGroup
	var received atomic.Int64
	for i, c := range conns {
		readers.Go(func() {
			last := make([]int, pubs)
			for j := range last {
				last[j] = -1
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for {
				_, p, err := c.read(ctx)
				if err != nil {
					return // closed (by the test or the churn)
				}
				pub, seq, ok := topicSeq(p)
				if !ok {
					continue
				}
				if seq <= last[pub] {
					t.Errorf("client %d: p%d frame %d after %d", i, pub, seq, last[pub])
					return
				}
				last[pub] = seq
				received.Add(1)
			}
		})
	}
	var work sync.WaitGroup
	stop := make(chan struct{})
	for p := range pubs {
		work.Go(func() {
			for i := range frames {
				s.Publish("hot", NewFrame(OpText, fmt.Appendf(nil, "p%d %d", p, i)), Reliable)
				if i%50 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	for g := range 3 {
		work.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				h := handles[rng.IntN(len(handles))]
				if rng.IntN(2) == 0 {
					s.Subscribe(h, "hot")
				} else {
					s.Unsubscribe(h, "hot")
				}
				if rng.IntN(400) == 0 {
					h.Close(CloseNormal, "churn")
				}
			}
		})
	}
	// Some clients go away in the middle, without a Close.
	time.Sleep(20 * time.Millisecond)
	for _, c := range conns[:clients/4] {
		c.abort()
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	work.Wait()
	for _, c := range conns {
		c.abort()
	}
	readers.Wait()
	if received.Load() == 0 {
		t.Error("no frame was delivered")
	}
	waitFor(t, 5*time.Second, "every connection to go", func() bool { return s.live.Load() == 0 })
	if n, k := s.topics.n.Load(), s.topics.subs.Load(); n != 0 || k != 0 {
		t.Errorf("%d topics, %d subscriptions left; want none", n, k)
	}
}

// TestWatchTopics checks WatchTopics' contract under churn: fn runs
// outside engine locks (it publishes to the topic and reads its count,
// which would deadlock under a part's lock), and a watcher that reads
// Subscribers on each call ends with the true state of every topic.
func TestWatchTopics(t *testing.T) {
	app := &topicApp{}
	s, err := New(testConfig(Config{App: app, Workers: 2}))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	view := map[string]bool{} // topic -> the watcher thinks it has subscribers
	var calls atomic.Int64
	probe := NewFrame(OpText, []byte("probe"))
	s.WatchTopics(func(topic string) {
		calls.Add(1)
		s.Publish(topic, probe, LatestOnly)
		mu.Lock()
		view[topic] = s.Subscribers(topic) > 0
		mu.Unlock()
	})
	addr := serveOn(t, s)
	const clients, topics = 16, 6
	var conns []libConn
	for i := range clients {
		conns = append(conns, libDial(t, libClients[i%2], addr))
	}
	waitFor(t, 5*time.Second, "the opens", func() bool {
		app.mu.Lock()
		defer app.mu.Unlock()
		return len(app.conns) == clients
	})
	app.mu.Lock()
	handles := append([]Conn(nil), app.conns...)
	app.mu.Unlock()
	for _, c := range conns {
		go func() { // keep the sockets drained
			for {
				if _, _, err := c.read(context.Background()); err != nil {
					return
				}
			}
		}()
	}
	name := func(i int) string { return "t" + strconv.Itoa(i) }
	var work sync.WaitGroup
	for g := range 4 {
		work.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for i := range 20000 {
				h := handles[rng.IntN(len(handles))]
				tp := name(rng.IntN(topics))
				if rng.IntN(2) == 0 {
					s.Subscribe(h, tp)
				} else {
					s.Unsubscribe(h, tp)
				}
				if g == 0 && i%4000 == 3999 {
					conns[i/4000].abort() // closes take topics to zero too
				}
			}
		})
	}
	work.Wait()
	check := func(when string) {
		t.Helper()
		// Every change has returned, and fn runs before the change's
		// call returns: the view must be right now.
		mu.Lock()
		defer mu.Unlock()
		for i := range topics {
			tp := name(i)
			if got, want := view[tp], s.Subscribers(tp) > 0; got != want {
				t.Errorf("%s: watcher thinks %s has subscribers: %v; it has %d", when, tp, got, s.Subscribers(tp))
			}
		}
	}
	// The aborted clients' closes run on the workers: wait for them.
	waitFor(t, 5*time.Second, "the aborted clients to go", func() bool { return s.live.Load() == clients-5 })
	check("after churn")
	if calls.Load() == 0 {
		t.Fatal("fn never called")
	}
	for _, c := range conns {
		c.abort()
	}
	waitFor(t, 5*time.Second, "every connection to go", func() bool { return s.live.Load() == 0 })
	check("after every close")
	mu.Lock()
	for tp, has := range view {
		if has {
			t.Errorf("watcher still thinks %s has subscribers", tp)
		}
	}
	mu.Unlock()
}
