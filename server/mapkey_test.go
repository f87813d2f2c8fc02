package server

import (
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// keyApp keeps per-connection state in a map keyed by Conn, as the
// handle's doc says an application may.
type keyApp struct {
	mu     sync.Mutex
	state  map[Conn]int // messages seen
	opened []Conn
	misses int // a callback's handle that was not in the map
	closed chan int
}

func (a *keyApp) OnOpen(c Conn) {
	a.mu.Lock()
	a.state[c] = 0
	a.opened = append(a.opened, c)
	a.mu.Unlock()
}

func (a *keyApp) OnMessage(c Conn, _ Opcode, _ []byte) {
	a.mu.Lock()
	if _, ok := a.state[c]; !ok {
		a.misses++
	}
	a.state[c]++
	a.mu.Unlock()
}

func (a *keyApp) OnClose(c Conn, _ CloseCode) {
	a.mu.Lock()
	n, ok := a.state[c]
	if !ok {
		a.misses++
	}
	delete(a.state, c)
	a.mu.Unlock()
	a.closed <- n
}

// TestConnMapKey: the handles the callbacks of one connection get are
// equal (one map entry from OnOpen to OnClose), those of different
// connections differ, and a connection that reuses a closed one's
// descriptor and struct is a new key.
func TestConnMapKey(t *testing.T) {
	app := &keyApp{state: map[Conn]int{}, closed: make(chan int, 8)}
	_, addr := startServer(t, Config{App: app, Workers: 1})
	dial := func() *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := dial(), dial()
	for i := range 3 {
		a.WriteMessage(websocket.TextMessage, []byte("a"))
		if i < 2 {
			b.WriteMessage(websocket.TextMessage, []byte("b"))
		}
	}
	a.Close()
	b.Close()
	got := []int{<-app.closed, <-app.closed}
	if !(got[0] == 3 && got[1] == 2 || got[0] == 2 && got[1] == 3) {
		t.Errorf("messages counted per key %v; want 3 and 2", got)
	}
	// The next client gets a descriptor (and conn struct) of a closed one.
	c := dial()
	defer c.Close()
	waitFor(t, 2*time.Second, "third open", func() bool {
		app.mu.Lock()
		defer app.mu.Unlock()
		return len(app.opened) == 3
	})
	app.mu.Lock()
	defer app.mu.Unlock()
	if app.misses != 0 {
		t.Errorf("%d callbacks got a handle that was not the map's key", app.misses)
	}
	o := app.opened
	if o[0] == o[1] || o[2] == o[0] || o[2] == o[1] {
		t.Errorf("handles of different connections compare equal: %v", o)
	}
	if o[2].c != o[0].c && o[2].c != o[1].c {
		t.Logf("the third connection did not reuse a struct; the stale-key case was not exercised")
	}
	if len(app.state) != 1 {
		t.Errorf("map holds %d entries; want 1 (the open connection)", len(app.state))
	}
}
