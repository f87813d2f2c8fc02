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

type demo struct{}

// OnOpen greets; it runs before the first time push can reach the client.
func (demo) OnOpen(c server.Conn) { c.SendFrame(greeting, server.Reliable) }

// OnMessage echoes: the payload is borrowed, and Send copies what the
// kernel does not take at once. Echoes are never dropped: a client that
// does not read them is closed at -max-outbound.
func (demo) OnMessage(c server.Conn, op server.Opcode, payload []byte) {
	c.Send(op, payload, server.Reliable)
}

func (demo) OnClose(server.Conn, server.CloseCode) {}

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

// withDemo installs the demo application in cfg.
func withDemo(cfg server.Config) server.Config {
	k := &clock{}
	cfg.App = demo{}
	cfg.Pushes = []server.Push{k.push()}
	return cfg
}
