package main

import (
	"time"

	"github.com/wsmill/wsmill/server"
)

// The demo application, written on wsmill's App API like any other: it
// greets every client, echoes every message, and pushes the server's time.

// TimeLayout is the format of the time push.
const TimeLayout = "2006-01-02 15:04:05"

// greeting is the first frame every client gets, prepared once.
var greeting = server.NewFrame(server.OpText, []byte("Hi Client!"))

// A connection on /chat carries its *chatMember (Conn.Value) and goes to
// the room chat (chat.go) instead.
type demo struct{ chat *chat }

// OnOpen greets; it runs before the first time push can reach the client.
func (d demo) OnOpen(c server.Conn) {
	if m, ok := c.Value().(*chatMember); ok {
		d.chat.onOpen(c, m)
		return
	}
	c.SendFrame(greeting, server.Reliable)
}

// OnMessage echoes: the payload is borrowed, and Send copies what the
// kernel does not take at once. Echoes are never dropped: a client that
// does not read them is closed at -max-outbound.
func (d demo) OnMessage(c server.Conn, op server.Opcode, payload []byte) {
	if m, ok := c.Value().(*chatMember); ok {
		d.chat.onMessage(c, m, op, payload)
		return
	}
	c.Send(op, payload, server.Reliable)
}

// OnClose: a chat member leaves its room by itself (the engine drops a
// closed connection's topics).
func (demo) OnClose(server.Conn, server.CloseCode) {}

// upgrade is the demo's Config.OnUpgrade: /chat needs a valid room and
// name (400 otherwise); /ws takes anything.
func (d demo) upgrade(r *server.Request) (any, int) {
	if string(r.Path()) != chatPath {
		return nil, 0
	}
	m := parseChat(r.Query())
	if m == nil {
		return nil, 400
	}
	return m, 0
}

// clock builds the time frame at most once a second and shares it with
// every connection pushed in that second. Only the wheel goroutine calls
// frame, so it needs no lock.
type clock struct {
	sec   int64
	frame *server.Frame
}

func (k *clock) push() server.Push {
	return server.Push{Frame: k.frameAt, Policy: server.LatestOnly}
}

func (k *clock) frameAt(now time.Time) *server.Frame {
	if sec := now.Unix(); sec != k.sec || k.frame == nil {
		var b [len(TimeLayout)]byte
		k.sec, k.frame = sec, server.NewFrame(server.OpText, now.AppendFormat(b[:0], TimeLayout))
	}
	return k.frame
}

// withDemo installs the demo application in cfg, with a room chat on
// this instance only.
func withDemo(cfg server.Config) server.Config {
	return withDemoChat(cfg, &chat{maxText: defaultChatMax})
}

// withDemoChat installs the demo application with ch as its chat (whose
// bus may be set after server.New, before Serve).
func withDemoChat(cfg server.Config, ch *chat) server.Config {
	k := &clock{}
	d := demo{chat: ch}
	cfg.App = d
	cfg.OnUpgrade = d.upgrade
	cfg.Paths = append(cfg.Paths, chatPath)
	cfg.Pushes = []server.Push{k.push()}
	return cfg
}
