package server

import (
	"time"
)

// The engine knows nothing of greetings, echoes or clocks; the tests of
// this package drive it with the demo's behaviour (package main has the
// real one): greet with "Hi Client!", echo every message reliably, push
// the time every PushInterval. testConfig installs it unless a test brought
// its own App.

// TimeLayout is the format of the test app's time push.
const TimeLayout = "2006-01-02 15:04:05"

var (
	greeting      = NewFrame(OpText, []byte("Hi Client!"))
	greetingFrame = greeting.b // as it appears on the wire
)

type echoApp struct{}

func (echoApp) OnOpen(c Conn) { c.SendFrame(greeting, Reliable) }

func (echoApp) OnMessage(c Conn, op Opcode, payload []byte) { c.Send(op, payload, Reliable) }

func (echoApp) OnClose(Conn, CloseCode) {}

// timePush builds the time frame at most once a second (wheel goroutine only).
type timePush struct {
	sec   int64
	frame *Frame
}

func (k *timePush) frameAt(now time.Time) *Frame {
	if sec := now.Unix(); sec != k.sec || k.frame == nil {
		k.sec, k.frame = sec, NewFrame(OpText, []byte(now.Format(TimeLayout)))
	}
	return k.frame
}

// testConfig gives cfg the demo's App and time push unless it has an App.
func testConfig(cfg Config) Config {
	if cfg.App == nil {
		cfg.App = echoApp{}
		cfg.Pushes = []Push{{Frame: new(timePush).frameAt, Policy: LatestOnly}}
	}
	return cfg
}
