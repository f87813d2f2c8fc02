package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// TestBrowserChatPanel drives the page's room chat in Chromium with a
// gorilla client in the same room: the page joins (its second WebSocket),
// what it says reaches the other member as the documented JSON, and what
// the other member says appears in the page's log.
func TestBrowserChatPanel(t *testing.T) {
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("Chromium is needed (%v): run scripts/ensure-chromium.sh", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	srv := startBrowserServer(t, "127.0.0.1:0")
	b := startBrowser(t, ctx)
	b.do("load the page", 15*time.Second, chromedp.Navigate("http://"+srv.addr+"/"))

	eval := func(what, js string) string {
		t.Helper()
		c, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		v, err := chromedp.Run(c, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	waitJS := func(what, js string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			v := eval(what, js)
			if ok(v) {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; last %q", what, v)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eval("join", `document.getElementById('chat-room').value='lobby';
		document.getElementById('chat-name').value='ada';
		document.getElementById('chat-join').requestSubmit(); 'ok'`)
	waitJS("the chat to open", `document.getElementById('chat-state').dataset.state`, func(s string) bool { return s == "open" })

	bob, _, err := websocket.DefaultDialer.Dial("ws://"+srv.addr+"/chat?room=lobby&name=bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	time.Sleep(100 * time.Millisecond) // bob's subscription runs on a worker
	eval("say", `document.getElementById('chat-msg').value='hi from chromium';
		document.getElementById('chat-form').requestSubmit(); 'ok'`)
	if got, want := readChat(t, bob), (chatMessage{Type: "message", Room: "lobby", Name: "ada", Text: "hi from chromium"}); got != want {
		t.Fatalf("bob got %+v; want %+v", got, want)
	}
	if err := bob.WriteMessage(websocket.TextMessage, []byte("hi back <b>x</b>")); err != nil {
		t.Fatal(err)
	}
	log := waitJS("bob's message in the page", `document.getElementById('chat-log').innerText`,
		func(s string) bool { return strings.Contains(s, "bob") && strings.Contains(s, "hi back <b>x</b>") })
	if !strings.Contains(log, "ada") || !strings.Contains(log, "hi from chromium") {
		t.Errorf("page log %q; want ada's own message too (the sender gets it)", log)
	}
	if n := eval("bold", `String(document.querySelectorAll('#chat-log b').length)`); n != "0" {
		t.Errorf("%s <b> elements in the log: text must not become markup", n)
	}
}
