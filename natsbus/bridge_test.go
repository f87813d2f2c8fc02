package natsbus

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmill/wsmill/server"
)

// TestCrossInstanceOnceInOrder: a publish on A reaches A's subscriber once
// (not again from NATS) and B's, both in the publisher's order, and no
// subscriber of another topic.
func TestCrossInstanceOnceInOrder(t *testing.T) {
	ns := startNATS(t, 0)
	url := natsURL(natsPort(ns))
	a, b := startInstance(t, url, Config{}), startInstance(t, url, Config{})
	pub := join(t, a, "room.1")
	onB := join(t, b, "room.1")
	other := join(t, b, "room.2")
	waitNATSSubs(t, ns, 3)

	const n = 500
	go func() {
		for i := range n {
			pub.WriteMessage(websocket.TextMessage, []byte(strconv.Itoa(i)))
		}
	}()
	for _, c := range []*websocket.Conn{pub, onB} {
		for i := range n {
			if got := read(t, c, 5*time.Second); got != strconv.Itoa(i) {
				t.Fatalf("message %d: got %q; want %q (order, or a duplicate)", i, got, strconv.Itoa(i))
			}
		}
	}
	silent(t, pub, 300*time.Millisecond, "publisher after all its messages (NATS echo?)")
	silent(t, onB, 50*time.Millisecond, "B after all messages")
	silent(t, other, 50*time.Millisecond, "a subscriber of another topic")
	if st := a.bridge.Stats(); st.Published != n || !st.Connected {
		t.Errorf("A's stats: %+v; want %d published, connected", st, n)
	}
	if st := b.bridge.Stats(); st.Received != n {
		t.Errorf("B's stats: %+v; want %d received", st, n)
	}
}

// TestNATSRestart: NATS stops mid-test. Local delivery goes on; a
// cross-instance publish is dropped and counted (never delivered late once
// NATS is back); when NATS comes back on the same address both bridges
// reconnect and resubscribe by themselves and cross-instance delivery
// resumes.
func TestNATSRestart(t *testing.T) {
	ns := startNATS(t, 0)
	port := natsPort(ns)
	url := natsURL(port)
	a, b := startInstance(t, url, Config{}), startInstance(t, url, Config{})
	pub := join(t, a, "room.1")
	onB := join(t, b, "room.1")
	waitNATSSubs(t, ns, 2)
	send(t, pub, "before")
	if got := read(t, pub, 2*time.Second); got != "before" {
		t.Fatalf("got %q", got)
	}
	if got := read(t, onB, 2*time.Second); got != "before" {
		t.Fatalf("B got %q", got)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	waitFor(t, 5*time.Second, "both bridges to see NATS gone", func() bool {
		return !a.bridge.Stats().Connected && !b.bridge.Stats().Connected
	})
	for i := range 5 {
		send(t, pub, fmt.Sprint("during ", i))
		if got := read(t, pub, 2*time.Second); got != fmt.Sprint("during ", i) {
			t.Fatalf("local delivery during the outage: got %q", got)
		}
	}
	waitFor(t, 2*time.Second, "the drops to be counted", func() bool { return a.bridge.Stats().Dropped[reasonDisconnected] >= 5 })
	if d := a.bridge.Stats().Dropped[reasonDisconnected]; d != 5 {
		t.Errorf("dropped (disconnected) = %d; want 5", d)
	}

	ns2 := startNATS(t, port)
	waitFor(t, 10*time.Second, "both bridges to reconnect", func() bool {
		return a.bridge.Stats().Connected && b.bridge.Stats().Connected
	})
	waitNATSSubs(t, ns2, 2) // resubscribed, without any client doing anything
	send(t, pub, "after")
	if got := read(t, pub, 2*time.Second); got != "after" {
		t.Fatalf("A after restart got %q", got)
	}
	// B's next message is "after": nothing from the outage came late.
	if got := read(t, onB, 5*time.Second); got != "after" {
		t.Fatalf("B after restart got %q; want \"after\" (outage messages must not arrive late)", got)
	}
	if st := a.bridge.Stats(); st.Reconnects != 1 {
		t.Errorf("A reconnects = %d; want 1", st.Reconnects)
	}
}

// TestStartWhileNATSDown: an instance whose NATS is not up yet serves
// (local delivery works) and connects once NATS comes up.
func TestStartWhileNATSDown(t *testing.T) {
	ns := startNATS(t, 0)
	port := natsPort(ns)
	ns.Shutdown()
	ns.WaitForShutdown()
	url := natsURL(port)
	a := startInstance(t, url, Config{})
	pub := join(t, a, "room.1")
	send(t, pub, "local")
	if got := read(t, pub, 2*time.Second); got != "local" {
		t.Fatalf("got %q", got)
	}
	waitFor(t, 2*time.Second, "the drop to be counted", func() bool { return a.bridge.Stats().Dropped[reasonDisconnected] > 0 })
	if st := a.bridge.Stats(); st.Connected || st.Dropped[reasonDisconnected] != 1 {
		t.Errorf("stats while NATS down: %+v; want not connected, 1 dropped", st)
	}
	ns2 := startNATS(t, port)
	b := startInstance(t, url, Config{})
	onB := join(t, b, "room.1")
	waitFor(t, 10*time.Second, "A to connect", func() bool { return a.bridge.Stats().Connected })
	waitNATSSubs(t, ns2, 2)
	send(t, pub, "cross")
	read(t, pub, 2*time.Second)
	if got := read(t, onB, 5*time.Second); got != "cross" {
		t.Fatalf("B got %q", got)
	}
}

// TestChurnLeavesNoSubscription: clients come and go over many topics on
// two instances, subscribing and leaving by closing; afterwards NATS holds
// no subscription of either bridge.
func TestChurnLeavesNoSubscription(t *testing.T) {
	ns := startNATS(t, 0)
	url := natsURL(natsPort(ns))
	ins := []*instance{startInstance(t, url, Config{}), startInstance(t, url, Config{})}
	for round := range 4 {
		var conns []*websocket.Conn
		for i := range 60 {
			in := ins[i%2]
			topic := fmt.Sprintf("t.%d", (i*7+round)%25)
			c, _, err := websocket.DefaultDialer.Dial("ws://"+in.addr+"/ws?topic="+topic, nil)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		waitFor(t, 5*time.Second, "subscriptions", func() bool { return ns.subs() > 0 })
		for _, c := range conns {
			c.Close() // abrupt: the server sees EOF and closes
		}
	}
	waitNATSSubs(t, ns, 0)
	for i, in := range ins {
		waitFor(t, 5*time.Second, "the bridge's subscriptions to go", func() bool { return in.bridge.Stats().Subscriptions == 0 })
		if st := in.bridge.Stats(); st.Subscriptions != 0 {
			t.Errorf("instance %d: %d subscriptions left", i, st.Subscriptions)
		}
	}
}

// TestSlowSubscriberSlowsNoOne: a client on A that never reads, subscribed
// to the topic every message goes to, does not hold up delivery to the
// reading clients on A and on B: the engine closes it (Reliable, past
// MaxOutbound) and the bridge goes on.
func TestSlowSubscriberSlowsNoOne(t *testing.T) {
	ns := startNATS(t, 0)
	url := natsURL(natsPort(ns))
	// A reading client under -race can fall a few hundred KB behind a
	// burst; the stuck one is past 1 MiB long before the 8 MB are out.
	roomy := func(c *server.Config) { c.MaxOutbound = 1 << 20 }
	a, b := startInstance(t, url, Config{}, roomy), startInstance(t, url, Config{}, roomy)
	stuck := join(t, a, "room.1") // never read
	fastA := join(t, a, "room.1")
	fastB := join(t, b, "room.1")
	waitNATSSubs(t, ns, 2)

	pubNC := rawNATS(t, url)
	payload := strings.Repeat("x", 4096)
	const n = 2000 // 8 MB: far past the stuck client's queue and socket buffers
	start := time.Now()
	go func() {
		for i := range n {
			pubNC.Publish("wsmill.room.1", append([]byte{1}, fmt.Sprintf("%05d%s", i, payload)...))
			if i%8 == 7 { // a busy room (32 KB per ms at most), not a flood
				pubNC.Flush()
				time.Sleep(time.Millisecond)
			}
		}
		pubNC.Flush()
	}()
	errs := make(chan error, 2)
	for _, c := range []*websocket.Conn{fastA, fastB} {
		go func() {
			for i := range n {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, m, err := c.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("message %d: %v", i, err)
					return
				}
				if string(m[:5]) != fmt.Sprintf("%05d", i) {
					errs <- fmt.Errorf("message %d: got %q", i, m[:5])
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	stuck.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := stuck.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Errorf("stuck client: %v; want closed with 1008 once it was past MaxOutbound", err)
			}
			break
		}
	}
	t.Logf("%d messages of 4 KiB to a reading client on each instance in %v, with a stuck one on A", n, time.Since(start))
	if d := a.bridge.Stats().Dropped[reasonSlowConsumer]; d != 0 {
		t.Errorf("A dropped %d as slow consumer; want 0 (the stuck client must not hold the bridge)", d)
	}
}

// TestBadBusInput: what a foreign publisher puts on a subject is dropped
// and counted unless it is a well-formed message; the client gets only the
// good one and stays connected.
func TestBadBusInput(t *testing.T) {
	ns := startNATS(t, 0)
	url := natsURL(natsPort(ns))
	a := startInstance(t, url, Config{MaxPayload: 1024})
	c := join(t, a, "room.1")
	waitNATSSubs(t, ns, 1)
	nc := rawNATS(t, url)
	for _, m := range [][]byte{
		{},                                       // empty
		{0x21, 'x'},                              // reserved bit
		{0x09, 'x'},                              // opcode 9 (ping) is no data message
		{0x01, 0xff, 0xfe},                       // text, not UTF-8
		append([]byte{2}, make([]byte, 1025)...), // over MaxPayload
	} {
		nc.Publish("wsmill.room.1", m)
	}
	nc.Publish("wsmill.room.9", []byte{1, 'n'}) // nobody here subscribed: never sent to us
	nc.Publish("wsmill.room.1", []byte{1, 'o', 'k'})
	nc.Flush()
	if got := read(t, c, 2*time.Second); got != "ok" {
		t.Fatalf("got %q; want only \"ok\"", got)
	}
	st := a.bridge.Stats()
	if st.Dropped[reasonMalformed] != 4 || st.Dropped[reasonOversized] != 1 || st.Received != 6 {
		t.Errorf("stats %+v; want 4 malformed, 1 oversized, 6 received", st)
	}
}

// TestTopicCannotWiden: topics with NATS's wildcards or separators never
// become a subscription, so a subscriber of "room.*" or ">" gets nothing
// from other rooms, and ValidTopic says exactly which topics cross.
func TestTopicCannotWiden(t *testing.T) {
	for _, tt := range []struct {
		topic string
		ok    bool
	}{
		{"room", true}, {"chat.lobby", true}, {"a-b_C9", true},
		{"", false}, {"*", false}, {">", false}, {"chat.*", false}, {"chat.>", false},
		{"chat..a", false}, {".a", false}, {"a.", false}, {"a b", false}, {"a\tb", false},
		{"a\x00", false}, {"é", false}, {strings.Repeat("a", MaxTopic+1), false},
	} {
		if got := ValidTopic(tt.topic); got != tt.ok {
			t.Errorf("ValidTopic(%q) = %v; want %v", tt.topic, got, tt.ok)
		}
	}
	ns := startNATS(t, 0)
	url := natsURL(natsPort(ns))
	a := startInstance(t, url, Config{})
	wild := []*websocket.Conn{join(t, a, "chat.*"), join(t, a, ">"), join(t, a, "chat.>")}
	time.Sleep(100 * time.Millisecond)
	if n := ns.subs(); n != 0 {
		t.Fatalf("nats-server holds %d subscriptions; want 0 (wildcard topics stay local)", n)
	}
	nc := rawNATS(t, url)
	nc.Publish("wsmill.chat.lobby", []byte{1, 'x'})
	nc.Flush()
	for _, c := range wild {
		silent(t, c, 100*time.Millisecond, "a wildcard topic's subscriber")
	}
	if d := a.bridge.Stats().Dropped[reasonInvalidTopic]; d != 3 {
		t.Errorf("invalid_topic drops = %d; want 3", d)
	}
}

// TestRedact: what may be logged of a URL carries no password or token.
func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://alice:s3cret@h:4222", "nats://alice:xxxxx@h:4222"},
		{"nats://t0ken@h:4222,tls://bob:pw@g:4443", "nats://xxxxx@h:4222,tls://bob:xxxxx@g:4443"},
	} {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestBadURLErrorHidesCredentials: a URL nats.go cannot parse is refused,
// and the error does not repeat the password.
func TestBadURLErrorHidesCredentials(t *testing.T) {
	srv, err := server.New(server.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"nats://alice:s3cret@host:%zz", "nats://s3cret@ho st:4222"} {
		_, err := New(srv, Config{URL: u})
		if err == nil {
			t.Fatalf("New(%q) accepted it", u)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q): error %q carries the secret", u, err)
		}
	}
}

// TestServerDoesNotImportNATS: a program that uses server/ and not the
// bridge links no NATS code.
func TestServerDoesNotImportNATS(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/wsmill/wsmill/server").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/gobwas/ws") {
		t.Fatalf("go list -deps printed no dependency of server/ (gobwas/ws):\n%s", out)
	}
	if strings.Contains(string(out), "nats-io") {
		t.Errorf("server/ depends on NATS:\n%s", out)
	}
}
