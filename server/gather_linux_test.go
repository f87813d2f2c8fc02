package server

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// writeCalls is this process's count of write(2)-family system calls so
// far (/proc/self/io syscw; writev counts as one).
func writeCalls(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("/proc/self/io has no syscw")
	return 0
}

// TestGatherOneWritePerBatch: 16 frames arriving in one read are echoed
// with one write(2), not 16. The test process holds both ends, so the
// count includes the client's one write; the least of several trials
// keeps a stray wheel wake-up (an eventfd write) out of it.
func TestGatherOneWritePerBatch(t *testing.T) {
	cfg := rawConfig()
	cfg.PushInterval = time.Hour
	cfg.Workers = 1
	_, addr := startServer(t, cfg)
	rc := rawHandshake(t, addr)
	const k = 16
	var batch []byte
	var want [][]byte
	for i := range k {
		p := []byte(fmt.Sprintf("message %02d of the batch, %s", i, strings.Repeat("x", 100)))
		want = append(want, p)
		batch = append(batch, rawFrame(rawOpText, true, p, true)...)
	}
	least := 1 << 30
	for range 7 {
		before := writeCalls(t)
		rc.write(batch)
		for i := range k {
			f := rc.next()
			if f.op != rawOpText || !bytes.Equal(f.payload, want[i]) {
				t.Fatalf("echo %d: got %v; want %q", i, f, want[i])
			}
		}
		least = min(least, writeCalls(t)-before)
	}
	// One write by the client, one by the server.
	if least > 2 {
		t.Errorf("write calls for a batch of %d echoes (client's included): got %d; want 2", k, least)
	}
}

// TestGatherKeepsOrder: pipelined echoes, pings between them, and frames
// sent from another goroutine to the same connection while its batches
// are being handled: every echo arrives, in order, each pong after the
// echoes sent before its ping, and the other goroutine's frames in their
// own order, never inside another frame.
func TestGatherKeepsOrder(t *testing.T) {
	app := newRecApp()
	cfg := rawConfig()
	cfg.App = app
	cfg.Workers = 1
	s, addr := startServer(t, cfg)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "Hi Client!" {
		t.Fatalf("greeting: %q, %v", msg, err)
	}
	var h Conn
	waitFor(t, time.Second, "the handle", func() bool {
		app.mu.Lock()
		defer app.mu.Unlock()
		if len(app.conns) == 1 {
			h = app.conns[0]
		}
		return h.c != nil
	})
	pongs := make(chan string, 1000)
	c.SetPongHandler(func(p string) error { pongs <- p; return nil })

	const n = 2000
	var wg sync.WaitGroup
	wg.Go(func() { // the other goroutine
		for i := range n {
			h.Send(OpBinary, []byte(fmt.Sprintf("side %d", i)), Reliable)
		}
	})
	wg.Go(func() { // the client, pipelining
		for i := range n {
			c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("echo %d", i)))
			if i%100 == 0 {
				c.WriteControl(websocket.PingMessage, []byte(fmt.Sprint(i)), time.Now().Add(time.Second))
			}
		}
	})
	nextEcho, nextSide := 0, 0
	for nextEcho < n || nextSide < n {
		op, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d echoes and %d side frames: %v", nextEcho, nextSide, err)
		}
		switch {
		case op == websocket.TextMessage && string(msg) == fmt.Sprintf("echo %d", nextEcho):
			nextEcho++
		case op == websocket.BinaryMessage && string(msg) == fmt.Sprintf("side %d", nextSide):
			nextSide++
		default:
			t.Fatalf("got %d %q; want echo %d or side %d", op, msg, nextEcho, nextSide)
		}
		select {
		case p := <-pongs:
			// The ping came after echo p was sent: its echo is out first.
			if i, _ := strconv.Atoi(p); i >= nextEcho {
				t.Fatalf("pong %s before echo %s", p, p)
			}
		default:
		}
	}
	wg.Wait()
	if st := s.Stats(); st.Overflows != 0 {
		t.Errorf("Overflows: got %d; want 0", st.Overflows)
	}
}
