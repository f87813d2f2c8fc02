package server

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestPathsUpgradeWithoutPushes: a path in Config.Paths is upgraded like
// Path, OnUpgrade sees which one, its connections get no periodic push
// while those on Path do, and any other path still goes to Handler.
func TestPathsUpgradeWithoutPushes(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	cfg := testConfig(Config{Paths: []string{"/chat"}, PushInterval: 20 * time.Millisecond})
	cfg.OnUpgrade = func(r *Request) (any, int) {
		mu.Lock()
		seen[string(r.Path())]++
		mu.Unlock()
		return nil, 0
	}
	_, addr := startServer(t, cfg)

	dial := func(path string) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+path, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		t.Cleanup(func() { c.Close() })
		if _, m, err := c.ReadMessage(); err != nil || string(m) != "Hi Client!" {
			t.Fatalf("%s greeting: %q, %v", path, m, err)
		}
		return c
	}
	ws, chat := dial("/ws"), dial("/chat?room=a")

	ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, m, err := ws.ReadMessage(); err != nil {
		t.Fatalf("/ws: no time push: %v", err)
	} else if _, perr := time.Parse(TimeLayout, string(m)); perr != nil {
		t.Fatalf("/ws got %q; want a time push", m)
	}
	// Ten push intervals: a push would have arrived; the echo proves the
	// connection is served.
	time.Sleep(200 * time.Millisecond)
	if err := chat.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	chat.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, m, err := chat.ReadMessage(); err != nil || string(m) != "x" {
		t.Fatalf("/chat: got %q, %v; want only the echo \"x\" (no push)", m, err)
	}

	resp, err := http.Get("http://" + addr + "/chatx")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/chatx: status %d; want 404 from the Handler", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["/ws"] != 1 || seen["/chat"] != 1 {
		t.Errorf("OnUpgrade saw %v; want /ws and /chat once each", seen)
	}
}
