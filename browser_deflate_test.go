package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wsmill/wsmill/server"
)

// TestBrowserDeflate runs the demo page in Chromium against a -deflate
// server: the page connects and is greeted; a WebSocket of the page's own
// origin negotiates permessage-deflate (what Chromium offers:
// "permessage-deflate; client_max_window_bits"), and a 1 KiB JSON message
// goes out compressed by Chromium, comes back compressed by the server,
// and arrives whole.
func TestBrowserDeflate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	bs := startBrowserServerWith(t, "127.0.0.1:0", func(c *server.Config) { c.Deflate = true })
	b := startBrowser(t, ctx)
	b.do("load the page", 15*time.Second, chromedp.Navigate("http://"+bs.addr+"/"))
	b.wait("#state open and the greeting", 15*time.Second, func(s pageState) bool {
		return s.State == "open" && s.Greeting == "Hi Client!"
	})

	const js = `new Promise((resolve, reject) => {
	  const msg = JSON.stringify({type: "prices", items: Array.from({length: 20}, (_, i) =>
	    ({symbol: "SYM" + i, bid: 100 + i, ask: 101 + i, venue: "XNAS"}))});
	  const ws = new WebSocket("ws://" + location.host + "/ws");
	  const t = setTimeout(() => reject(new Error("timeout")), 10000);
	  ws.onopen = () => ws.send(msg);
	  ws.onmessage = (e) => {
	    if (e.data === msg) { clearTimeout(t); resolve({ext: ws.extensions, len: msg.length}); ws.close(); }
	  };
	  ws.onerror = () => reject(new Error("websocket error"));
	})`
	type result struct {
		Ext string `json:"ext"`
		Len int    `json:"len"`
	}
	before := bs.srv.Stats()
	rctx, rcancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer rcancel()
	res, err := chromedp.Run(rctx, chromedp.Evaluate[result](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("echo of a JSON message over a deflate WebSocket: %v", err)
	}
	if !strings.HasPrefix(res.Ext, "permessage-deflate") || !strings.Contains(res.Ext, "client_no_context_takeover") {
		t.Errorf("ws.extensions = %q; want permessage-deflate with client_no_context_takeover", res.Ext)
	}
	// The server counts a message sent once its write returns, which may
	// be after Chromium has read the echo: wait a little for the count.
	after := bs.srv.Stats()
	for deadline := time.Now().Add(2 * time.Second); after.DeflateOut <= before.DeflateOut && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		after = bs.srv.Stats()
	}
	if after.DeflateIn <= before.DeflateIn {
		t.Errorf("DeflateIn %d -> %d: Chromium's message did not arrive compressed", before.DeflateIn, after.DeflateIn)
	}
	if after.DeflateOut <= before.DeflateOut {
		t.Errorf("DeflateOut %d -> %d: the echo (%d bytes) did not go compressed", before.DeflateOut, after.DeflateOut, res.Len)
	}
	t.Logf("extensions %q; %d-byte JSON echoed compressed both ways", res.Ext, res.Len)
}
