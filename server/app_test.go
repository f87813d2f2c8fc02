//go:build linux

package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// recApp records what the engine tells the application, per connection,
// and echoes like the demo (panicking on the message "boom").
type recApp struct {
	mu     sync.Mutex
	events []string
	conns  []Conn
	closed chan CloseCode // one per OnClose
}

func newRecApp() *recApp { return &recApp{closed: make(chan CloseCode, 100)} }

func (a *recApp) log(format string, args ...any) {
	a.mu.Lock()
	a.events = append(a.events, fmt.Sprintf(format, args...))
	a.mu.Unlock()
}

func (a *recApp) OnOpen(c Conn) {
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
	a.log("open")
	c.SendFrame(greeting, Reliable)
}

func (a *recApp) OnMessage(c Conn, op Opcode, payload []byte) {
	a.log("message %d %q", op, payload)
	if string(payload) == "boom" {
		panic("boom")
	}
	c.Send(op, payload, Reliable)
}

func (a *recApp) OnClose(c Conn, code CloseCode) {
	a.log("close %d", code)
	if r := c.Send(OpText, []byte("after close"), Reliable); r != Closed {
		a.log("send in OnClose: %v", r)
	}
	a.closed <- code
}

func (a *recApp) snapshot() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.events...)
}

func (a *recApp) last() Conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conns[len(a.conns)-1]
}

func (a *recApp) waitClose(t *testing.T) CloseCode {
	t.Helper()
	select {
	case code := <-a.closed:
		return code
	case <-time.After(3 * time.Second):
		t.Fatalf("no OnClose within 3 s; events %q", a.snapshot())
		return 0
	}
}

// TestAppCloseCodes: OnOpen once, each message, then OnClose exactly once
// with the code of whoever ended the connection; sends after OnClose
// report Closed.
func TestAppCloseCodes(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		end  func(t *testing.T, rc *rawConn, app *recApp)
		want CloseCode
	}{
		{"peer 4001", Config{}, func(t *testing.T, rc *rawConn, _ *recApp) {
			rc.write(rawFrame(rawOpClose, true, rawCloseBody(4001, "bye"), true))
			rc.expectClose(4001)
		}, 4001},
		{"peer empty close", Config{}, func(t *testing.T, rc *rawConn, _ *recApp) {
			rc.write(rawFrame(rawOpClose, true, nil, true))
			rc.expectClose(0)
		}, CloseNoStatus},
		{"abrupt", Config{}, func(t *testing.T, rc *rawConn, _ *recApp) {
			rc.nc.(*net.TCPConn).SetLinger(0)
			rc.nc.Close()
		}, CloseAbnormal},
		{"protocol error", Config{}, func(t *testing.T, rc *rawConn, _ *recApp) {
			rc.write(rawFrame(rawOpText, true, []byte("unmasked"), false))
			rc.expectClose(1002)
		}, CloseProtocolError},
		{"too big", Config{MaxMessage: 100}, func(t *testing.T, rc *rawConn, _ *recApp) {
			rc.write(rawFrame(rawOpBinary, true, make([]byte, 101), true))
			rc.expectClose(1009)
		}, CloseTooBig},
		{"server Close", Config{}, func(t *testing.T, rc *rawConn, app *recApp) {
			if r := app.last().Close(4321, "done"); r != Queued {
				t.Errorf("Close: got %v; want queued", r)
			}
			if r := app.last().Close(4000, "twice"); r != Closed {
				t.Errorf("second Close: got %v; want closed", r)
			}
			f := rc.next()
			if f.op != rawOpClose || string(f.payload[2:]) != "done" || f.payload[0] != 4321>>8 || f.payload[1] != 4321&0xff {
				t.Fatalf("got %v; want Close 4321 \"done\"", f)
			}
			rc.write(rawFrame(rawOpClose, true, f.payload[:2], true))
			rc.expectEOF(rawTimeout)
		}, 4321},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := newRecApp()
			cfg := rawConfig()
			cfg.App, cfg.MaxMessage = app, tt.cfg.MaxMessage
			s, addr := startServer(t, cfg)
			rc := rawHandshake(t, addr)
			rc.echo(rawOpText, []byte("héllo"))
			rc.write(rawFrame(rawOpBinary, false, []byte("frag"), true))
			rc.write(rawFrame(rawOpCont, true, []byte("ment"), true))
			rc.expectFrame(rawOpBinary, []byte("fragment"))
			tt.end(t, rc, app)
			if got := app.waitClose(t); got != tt.want {
				t.Fatalf("OnClose code: got %d; want %d", got, tt.want)
			}
			rawWaitLive(t, s, 0, 3*time.Second)
			want := []string{"open", `message 1 "héllo"`, `message 2 "fragment"`, fmt.Sprintf("close %d", tt.want)}
			if got := app.snapshot(); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("events: got %q; want %q", got, want)
			}
			if r := app.last().Send(OpText, []byte("late"), Reliable); r != Closed {
				t.Fatalf("Send after close: got %v; want closed", r)
			}
		})
	}
}

// TestAppPanic: a panicking OnMessage closes that connection with 1011,
// is counted and reported; the other connections carry on.
func TestAppPanic(t *testing.T) {
	app := newRecApp()
	var reported atomic.Int32
	cfg := rawConfig()
	cfg.App = app
	cfg.OnError = func(err error) {
		if pe := (*PanicError)(nil); errors.As(err, &pe) && pe.Callback == "OnMessage" && pe.Value == "boom" {
			reported.Add(1)
		}
	}
	s, addr := startServer(t, cfg)
	other := rawHandshake(t, addr)
	rc := rawHandshake(t, addr)
	rc.write(rawFrame(rawOpText, true, []byte("boom"), true))
	rc.expectClose(1011)
	if got := app.waitClose(t); got != CloseInternalError {
		t.Fatalf("OnClose: got %d; want 1011", got)
	}
	other.echo(rawOpText, []byte("still here"))
	if got := s.Stats().AppPanics; got != 1 {
		t.Fatalf("AppPanics = %d; want 1", got)
	}
	if reported.Load() != 1 {
		t.Fatalf("OnError reports: got %d; want 1", reported.Load())
	}
}

// TestHandleOutlivesConnection: a handle kept after its connection closed
// reports Closed, also once the kernel has given the descriptor number to
// a new client, and never writes to that client.
func TestHandleOutlivesConnection(t *testing.T) {
	app := newRecApp()
	cfg := rawConfig()
	cfg.App = app
	s, addr := startServer(t, cfg)
	for i := range 20 {
		a := rawHandshake(t, addr)
		old := app.last()
		a.nc.Close()
		app.waitClose(t)
		rawWaitLive(t, s, 0, 3*time.Second)
		b := rawHandshake(t, addr)
		cur := app.last()
		reused := cur.c == old.c
		if r := old.Send(OpText, []byte("for A only"), Reliable); r != Closed {
			t.Fatalf("round %d: old handle Send: got %v; want closed", i, r)
		}
		if r := old.Close(CloseNormal, ""); r != Closed {
			t.Fatalf("round %d: old handle Close: got %v; want closed", i, r)
		}
		if old.Value() != nil || old.Pending() != 0 || old.RemoteAddr().IsValid() {
			t.Fatalf("round %d: old handle: value %v, pending %d, addr %v; want zero values", i, old.Value(), old.Pending(), old.RemoteAddr())
		}
		if got, want := cur.RemoteAddr().String(), b.nc.LocalAddr().String(); got != want {
			t.Fatalf("round %d: RemoteAddr %s; want %s", i, got, want)
		}
		b.echo(rawOpText, []byte("b"))
		if _, err := b.rawRead(30 * time.Millisecond); err == nil {
			t.Fatalf("round %d (struct reused: %v): B got an extra frame", i, reused)
		}
		b.nc.Close()
		app.waitClose(t)
	}
}

// TestUpgradeHook: OnUpgrade sees path, query and headers, refuses with
// its status (counted as "app"), or attaches a value Conn.Value returns.
func TestUpgradeHook(t *testing.T) {
	type seen struct{ path, query, auth, missing string }
	got := make(chan seen, 4)
	app := &valueApp{values: make(chan any, 4)}
	cfg := rawConfig()
	cfg.App = app
	cfg.OnUpgrade = func(r *Request) (any, int) {
		got <- seen{string(r.Path()), string(r.Query()), string(r.Header("authorization")), string(r.Header("X-Missing"))}
		if string(r.Header("Authorization")) != "Bearer good" {
			return nil, 401
		}
		return "user-42", 0
	}
	s, addr := startServer(t, cfg)

	rc := rawDial(t, addr)
	rc.write([]byte(rawReq("GET /ws?room=7 HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer, "Authorization: Bearer bad")))
	r, err := rc.readResponse(rawTimeout)
	if err != nil || r.status != 401 {
		t.Fatalf("refused upgrade: got %d (%v); want 401", r.status, err)
	}
	if g := <-got; g != (seen{"/ws", "room=7", "Bearer bad", ""}) {
		t.Fatalf("hook saw %+v", g)
	}
	// Counted just after the response is written.
	waitFor(t, 2*time.Second, "rejected{app} = 1", func() bool { return s.Stats().RejectedBy[RejectApp] == 1 })

	rc = rawDial(t, addr)
	rc.write([]byte(rawReq("GET /ws HTTP/1.1", rawHdrHost, rawHdrUp, rawHdrConn, rawHdrKey, rawHdrVer, "Authorization:  Bearer good ")))
	rc.expectUpgraded(rawKey)
	if v := <-app.values; v != "user-42" {
		t.Fatalf("Value in OnOpen: got %v; want user-42", v)
	}
	<-got
}

type valueApp struct{ values chan any }

func (a *valueApp) OnOpen(c Conn)                  { a.values <- c.Value() }
func (a *valueApp) OnMessage(Conn, Opcode, []byte) {}
func (a *valueApp) OnClose(Conn, CloseCode)        {}

// TestSendPolicies: to a client that does not read, LatestOnly frames are
// skipped while one is queued; Reliable ones queue up to MaxOutbound and
// then close the client with 1008.
func TestSendPolicies(t *testing.T) {
	app := newRecApp()
	cfg := rawConfig()
	cfg.App, cfg.MaxOutbound = app, 16<<10
	s, addr := startServer(t, cfg)
	rc := mbDialSlow(t, addr)
	mbUpgrade(rc)
	c := app.last()
	big := bytes.Repeat([]byte{'x'}, 4<<10)
	// Fill the socket until frames queue.
	for i := 0; c.Pending() == 0; i++ {
		if i > 10000 {
			t.Fatal("the queue never filled")
		}
		c.Send(OpBinary, big[:1000], LatestOnly)
	}
	if r := c.Send(OpBinary, big[:10], LatestOnly); r != Skipped {
		t.Fatalf("LatestOnly behind a queued one: got %v; want skipped", r)
	}
	var last SendResult
	for i := 0; i < 100 && last != Closed; i++ {
		last = c.Send(OpBinary, big, Reliable)
	}
	if last != Closed {
		t.Fatalf("Reliable past MaxOutbound: got %v; want closed", last)
	}
	if got := app.waitClose(t); got != ClosePolicyViolation {
		t.Fatalf("OnClose: got %d; want 1008", got)
	}
	if s.Stats().Overflows != 1 {
		t.Fatalf("Overflows = %d; want 1", s.Stats().Overflows)
	}
	// The Close 1008 is behind the queued frames; read up to it.
	for {
		f, err := rc.rawRead(rawTimeout)
		if err != nil {
			t.Fatalf("reading up to the Close: %v", err)
		}
		if f.op == rawOpClose {
			if len(f.payload) < 2 || int(f.payload[0])<<8|int(f.payload[1]) != 1008 {
				t.Fatalf("got %v; want Close 1008", f)
			}
			break
		}
	}
}

// TestBroadcastAndForeignSends: Broadcast reaches every open connection;
// sends from other goroutines arrive whole and in order.
func TestBroadcastAndForeignSends(t *testing.T) {
	app := newRecApp()
	cfg := rawConfig()
	cfg.App = app
	s, addr := startServer(t, cfg)
	const n = 20
	var clients []*rawConn
	for range n {
		clients = append(clients, rawHandshake(t, addr))
	}
	f := NewFrame(OpText, []byte("to everyone"))
	if got, want := s.Broadcast(f, Reliable), (FanoutResult{Written: n}); got != want {
		t.Fatalf("Broadcast: got %+v; want %+v", got, want)
	}
	for _, rc := range clients {
		rc.expectFrame(rawOpText, []byte("to everyone"))
	}
	app.mu.Lock()
	conns := append([]Conn(nil), app.conns...)
	app.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for i := range 50 {
				c.Send(OpBinary, []byte(fmt.Sprint(i)), Reliable)
			}
		})
	}
	wg.Wait()
	for _, rc := range clients {
		for i := range 50 {
			rc.expectFrame(rawOpBinary, []byte(fmt.Sprint(i)))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil && !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}
	for range n {
		if code := app.waitClose(t); code != CloseGoingAway {
			t.Fatalf("OnClose at shutdown: got %d; want 1001", code)
		}
	}
}

// TestBroadcastParallel: past broadcastSerial open connections the workers'
// shares go out on goroutines of their own; every connection still gets
// the frame exactly once.
func TestBroadcastParallel(t *testing.T) {
	const n = broadcastSerial + 300
	s, err := New(testConfig(Config{PushInterval: time.Second, Workers: 2}))
	if err != nil {
		t.Fatal(err)
	}
	s.closeWorkers() // connections are placed by hand
	var peers []int
	for i := range n {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(fds[0]); syscall.Close(fds[1]) })
		c := &conn{fd: fds[0], slot: -1, phase: phaseOpen}
		w := s.owner(c.fd)
		sl := &w.slots[i%len(w.slots)]
		sl.put(c)
		peers = append(peers, fds[1])
	}
	s.open.Store(n)
	f := NewFrame(OpBinary, []byte("all of you"))
	if got, want := s.Broadcast(f, Reliable), (FanoutResult{Written: n}); got != want {
		t.Fatalf("Broadcast: got %+v; want %+v", got, want)
	}
	buf := make([]byte, 2*f.Len())
	for i, p := range peers {
		if k, err := syscall.Read(p, buf); k != f.Len() || err != nil || !bytes.Equal(buf[:k], f.b) {
			t.Fatalf("peer %d: read %d bytes (%v); want the frame once", i, k, err)
		}
	}
	if got := s.Stats().MessagesOut; got != n {
		t.Fatalf("MessagesOut = %d; want %d", got, n)
	}
}

// relayApp sends every message to every connection (itself included), then
// the first half back to the sender, and checks that sending left the
// borrowed payload as it was. It counts the messages that were lent in
// place (the single-write path of Conn.Send).
type relayApp struct {
	mu      sync.Mutex
	conns   []Conn
	inPlace atomic.Int64
	damaged atomic.Int64
}

func (a *relayApp) OnOpen(c Conn) {
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
	c.SendFrame(greeting, Reliable)
}

func (a *relayApp) OnMessage(c Conn, op Opcode, payload []byte) {
	if c.s.owner(c.c.fd).lent.Load() == &payload[0] {
		a.inPlace.Add(1)
	}
	orig := bytes.Clone(payload)
	a.mu.Lock()
	conns := append([]Conn(nil), a.conns...)
	a.mu.Unlock()
	for _, to := range conns {
		to.Send(op, payload, Reliable)
	}
	c.Send(OpBinary, payload[:len(payload)/2], Reliable) // a text half could split a rune
	if !bytes.Equal(payload, orig) {
		a.damaged.Add(1)
	}
}

func (a *relayApp) OnClose(Conn, CloseCode) {}

// TestSendInPlace: an echo or relay of the payload OnMessage borrows goes
// out with its header written over the client's in the read buffer. Every
// copy must arrive exact, on connections of the same worker (in place) and
// of the other (the ordinary path), for whole and half payloads at each
// header size, and the payload the application holds must not change.
func TestSendInPlace(t *testing.T) {
	app := &relayApp{}
	cfg := rawConfig()
	cfg.App, cfg.Workers = app, 2
	_, addr := startServer(t, cfg)
	var clients []*rawConn
	for range 4 {
		clients = append(clients, rawHandshake(t, addr))
	}
	rng := rand.New(rand.NewPCG(11, 12))
	sizes := []int{1, 2, 125, 126, 250, 1000, 65535, 65536}
	for _, size := range sizes {
		for from, sender := range clients {
			op, payload := byte(rawOpBinary), rawBytes(rng, size)
			if from%2 == 1 {
				op, payload = rawOpText, rawText(rng, size)
			}
			sender.write(rawFrame(op, true, payload, true))
			for _, rc := range clients {
				rc.expectFrame(op, payload)
			}
			sender.expectFrame(rawOpBinary, payload[:size/2])
		}
	}
	if n := app.damaged.Load(); n != 0 {
		t.Fatalf("%d payloads changed by Send; want none", n)
	}
	// Frames up to 1000 bytes arrive in one read: those at least were lent.
	if got, want := app.inPlace.Load(), int64(6*len(clients)); got < want {
		t.Fatalf("messages lent in place: got %d; want at least %d", got, want)
	}
}

// TestSlotCount: each wheel slot's count, which Broadcast reads without the
// lock to pass empty slots, follows adds and removes, including the
// swap-with-last of a remove.
func TestSlotCount(t *testing.T) {
	s, err := New(testConfig(Config{PushInterval: time.Hour, Workers: 2}))
	if err != nil {
		t.Fatal(err)
	}
	s.closeWorkers()
	rng := rand.New(rand.NewPCG(3, 4))
	var in []*conn
	for i := range 3000 {
		c := &conn{fd: 1<<20 + i, slot: -1, phase: phaseOpen}
		s.wheel.add(c)
		in = append(in, c)
		if rng.IntN(3) == 0 { // remove one at random now and then
			k := rng.IntN(len(in))
			s.wheel.remove(in[k])
			in[k] = in[len(in)-1]
			in = in[:len(in)-1]
		}
	}
	total := 0
	for _, w := range s.workers {
		for i := range w.slots {
			sl := &w.slots[i]
			if got, want := int(sl.n.Load()), len(sl.conns); got != want {
				t.Fatalf("worker %d slot %d: count %d; want %d (its length)", w.id, i, got, want)
			}
			for j, c := range sl.conns {
				if int(c.slot) != i || int(c.pos) != j {
					t.Fatalf("conn in slot %d at %d says slot %d pos %d", i, j, c.slot, c.pos)
				}
			}
			total += len(sl.conns)
		}
	}
	if total != len(in) {
		t.Fatalf("conns in slots: got %d; want %d", total, len(in))
	}
}

func TestNames(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{OpText.String(), "text"},
		{OpBinary.String(), "binary"},
		{Opcode(9).String(), "opcode(9)"},
		{CloseNormal.String(), "1000 normal"},
		{CloseAbnormal.String(), "1006 abnormal"},
		{CloseTryAgainLater.String(), "1013 try again later"},
		{CloseCode(4001).String(), "4001"},
		{fmt.Sprint(CloseGoingAway), "1001 going away"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}
