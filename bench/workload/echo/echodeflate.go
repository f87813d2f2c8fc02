package echo

// echo with permessage-deflate: the -deflate and -payload flags, and the
// bytes each echoed message takes on the wire in each direction (frame
// headers and payloads as sent and received, compressed or not), so that
// what compression saves is measured beside what it costs.

import (
	"errors"
	"flag"
	"fmt"
	"sync/atomic"

	"github.com/wsmill/wsmill/bench/internal/fleet"
	"github.com/wsmill/wsmill/bench/internal/payload"
	"github.com/wsmill/wsmill/bench/internal/report"
	"github.com/wsmill/wsmill/bench/internal/wsclient"
)

func (c *Config) registerDeflate(fs *flag.FlagSet) {
	fs.BoolVar(&c.Deflate, "deflate", false, "offer permessage-deflate (no context takeover) and compress every message sent; a server that declines gets plain messages")
	fs.StringVar(&c.Payload, "payload", "seq", "message content: seq (sequence number and a cycling pattern) or json (a price list, sent as text; compresses like real feeds)")
}

// checkPayload checks -payload (and makes a JSON echo a text one).
func (c *Config) checkPayload() error {
	switch c.Payload {
	case "", "seq":
		return nil
	case "json":
		if c.Size < payload.MinJSON {
			return fmt.Errorf("-payload json needs -size %d or more", payload.MinJSON)
		}
		c.Text = true // JSON goes as text messages, as an application sends it
		return nil
	}
	return fmt.Errorf("unknown -payload %q (seq or json)", c.Payload)
}

// echoFill returns the function that writes message seq of a connection:
// the reader rebuilds the same bytes to check the echo.
func echoFill(spec fleet.Spec) (func(p []byte, seq uint64), error) {
	switch spec.Payload {
	case "", "seq":
		return wsclient.EchoPayload, nil
	case "json":
		j, err := payload.NewJSON(spec.Size)
		if err != nil {
			return nil, err
		}
		return j.Fill, nil
	}
	return nil, errors.New("unknown payload " + spec.Payload)
}

// echoWirePart is one worker's wire counts: messages sent inside the
// window and their bytes, the bytes of the echoes counted in Msgs.
type echoWirePart struct {
	DeflateConns int   `json:"deflate_conns"` // connections that negotiated permessage-deflate
	WireOut      int64 `json:"wire_out"`
	WireOutMsgs  int64 `json:"wire_out_msgs"`
	WireIn       int64 `json:"wire_in"`
}

// echoWire is the echo result's compression part.
type echoWire struct {
	Deflate       bool    `json:"deflate"`          // the client offered permessage-deflate
	Payload       string  `json:"payload"`          // seq or json
	DeflateConns  int     `json:"deflate_conns"`    // connections where the server accepted it
	WireOutPerMsg float64 `json:"wire_out_per_msg"` // bytes on the wire per message, client to server
	WireInPerMsg  float64 `json:"wire_in_per_msg"`  // bytes on the wire per echo, server to client

	wireOut, wireOutMsgs, wireIn int64
}

func (r *Result) addWire(p echoWirePart) {
	r.DeflateConns += p.DeflateConns
	r.wireOut += p.WireOut
	r.wireOutMsgs += p.WireOutMsgs
	r.wireIn += p.WireIn
}

func (r *Result) endWire(cfg Config, msgs int64) {
	r.Deflate, r.Payload = cfg.Deflate, cfg.Payload
	if r.Payload == "" {
		r.Payload = "seq"
	}
	if r.wireOutMsgs > 0 {
		r.WireOutPerMsg = float64(r.wireOut) / float64(r.wireOutMsgs)
	}
	if msgs > 0 {
		r.WireInPerMsg = float64(r.wireIn) / float64(msgs)
	}
}

func printWire(t *report.Table, r *Result) {
	d := "not offered"
	if r.Deflate {
		d = fmt.Sprintf("offered, accepted on %d of %d connections", r.DeflateConns, r.Connected)
	}
	t.Row("permessage-deflate", d)
	t.Row("bytes on the wire per message (out / in)", fmt.Sprintf("%.0f / %.0f (payload %d, %s)", r.WireOutPerMsg, r.WireInPerMsg, r.Size, r.Payload))
}

// echoWireCount gathers a worker's counts from its writers and readers.
type echoWireCount struct {
	deflate, out, outN, in atomic.Int64
}

func (w *echoWireCount) conn(c *wsclient.Conn) {
	if c.Deflate() {
		w.deflate.Add(1)
	}
}

func (w *echoWireCount) sent(n int) {
	w.out.Add(int64(n))
	w.outN.Add(1)
}

func (w *echoWireCount) received(n int) { w.in.Add(int64(n)) }

func (w *echoWireCount) part() echoWirePart {
	return echoWirePart{DeflateConns: int(w.deflate.Load()), WireOut: w.out.Load(), WireOutMsgs: w.outN.Load(), WireIn: w.in.Load()}
}
