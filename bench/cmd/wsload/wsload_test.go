package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestMain lets the test binary serve as the worker process: the pool
// re-executes os.Executable() with "__worker".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "__worker" {
		if err := workerMain(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestMaskBytes(t *testing.T) {
	for n := 0; n < 40; n++ {
		for pos := 0; pos < 4; pos++ {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(i * 7)
			}
			want := append([]byte(nil), p...)
			key := uint32(0xA1B2C3D4)
			var k [4]byte
			binary.BigEndian.PutUint32(k[:], key)
			for i := range want {
				want[i] ^= k[(pos+i)&3]
			}
			maskBytes(p, key, pos)
			if !bytes.Equal(p, want) {
				t.Fatalf("n=%d pos=%d: got %x want %x", n, pos, p, want)
			}
		}
	}
}

// TestReadFrameMaskedAndFragmented feeds the reader a masked frame (as
// rawecho sends back), a ping, and a fragmented text message.
func TestReadFrameMaskedAndFragmented(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &wsConn{nc: a, br: bufio.NewReader(a)}
	srv := &wsConn{nc: b, br: bufio.NewReader(b)}
	payload := make([]byte, 300)
	echoPayload(payload, 42)
	go func() {
		srv.WriteFrame(opBinary, payload) // masked, 16-bit length
		srv.WriteFrame(opPing, []byte("p"))
		b.Write([]byte{0x01, 0x03, 'a', 'b', 'c'}) // text, not final, unmasked
		b.Write([]byte{0x80, 0x02, 'd', 'e'})      // continuation, final
	}()
	go io.Copy(io.Discard, srv.br) // the pong
	op, p, err := c.ReadMessage()
	if err != nil || op != opBinary || !bytes.Equal(p, payload) {
		t.Fatalf("masked frame: op %d err %v equal %v", op, err, bytes.Equal(p, payload))
	}
	op, p, err = c.ReadMessage()
	if err != nil || op != opText || string(p) != "abcde" {
		t.Fatalf("fragmented: op %d %q %v", op, p, err)
	}
}

func TestEchoPayloadIsNotAPush(t *testing.T) {
	p := make([]byte, len(timeLayout))
	for seq := uint64(0); seq < 1000; seq++ {
		echoPayload(p, seq)
		if isPush(opText, p) {
			t.Fatalf("payload %q looks like a push", p)
		}
	}
	if !isPush(opText, []byte(time.Now().Format(timeLayout))) {
		t.Fatal("a time push is not recognised")
	}
}

func TestIsSlowSpread(t *testing.T) {
	n := 0
	for g := 0; g < 19000; g++ {
		if isSlow(g, 1) {
			n++
		}
	}
	if n != 190 {
		t.Fatalf("1%% of 19000 = %d, want 190", n)
	}
	if isSlow(5, 0) {
		t.Fatal("0% marks a connection slow")
	}
}

func TestScanWorkloadAndMedian(t *testing.T) {
	if w := scanWorkload([]string{"-rounds", "2", "-workload", "push"}); w != "push" {
		t.Fatalf("got %q", w)
	}
	if w := scanWorkload([]string{"--workload=echo"}); w != "echo" {
		t.Fatalf("got %q", w)
	}
	if m := median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Fatalf("median %v", m)
	}
}

// testServer follows the servers' contract with gorilla/websocket.
func testServer(t *testing.T, push time.Duration) string {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var mu sync.Mutex
		write := func(op int, p []byte) error {
			mu.Lock()
			defer mu.Unlock()
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			return c.WriteMessage(op, p)
		}
		if write(websocket.TextMessage, []byte(greeting)) != nil {
			return
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			tk := time.NewTicker(push)
			defer tk.Stop()
			for {
				select {
				case <-done:
					return
				case <-tk.C:
					if write(websocket.TextMessage, []byte(time.Now().Format(timeLayout))) != nil {
						return
					}
				}
			}
		}()
		for {
			op, p, err := c.ReadMessage()
			if err != nil || write(op, p) != nil {
				return
			}
		}
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func TestEchoEndToEnd(t *testing.T) {
	addr := testServer(t, 50*time.Millisecond)
	for _, procs := range []int{1, 2} {
		res, err := runEcho(context.Background(), echoConfig{Addr: addr, PID: os.Getpid(), C: 4, Size: 200, K: 3,
			Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond, Greeting: true, Procs: procs,
			DialConc: 4, DialTimeout: 5 * time.Second, Text: procs == 2, Quiet: true})
		if err != nil {
			t.Fatalf("procs %d: %v", procs, err)
		}
		if res.Msgs == 0 || res.Mismatch != 0 || res.Lost != 0 || res.P50us <= 0 || res.Pushes == 0 {
			t.Fatalf("procs %d: %+v", procs, res)
		}
	}
}

func TestPushAndConnectionsEndToEnd(t *testing.T) {
	addr := testServer(t, 100*time.Millisecond)
	pr, err := runPush(context.Background(), pushConfig{Addr: addr, PID: os.Getpid(), N: 20, Interval: 100 * time.Millisecond,
		Duration: time.Second, SlowPct: 10, SlowBuf: 4096, SlowEvery: 10 * time.Millisecond, SlowSize: 1024,
		Procs: 2, DialConc: 8, DialTimeout: 5 * time.Second, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Normal != 18 || pr.Slow != 2 || pr.Gaps == 0 || pr.Expected != 10 || pr.SlowSent == 0 {
		t.Fatalf("push: %+v", pr)
	}
	cr, err := runConnections(context.Background(), connectionsConfig{Addr: addr, PID: os.Getpid(), N: 50, Procs: 2,
		Src: "127.0.0.2,127.0.0.3", Greeting: true, Hold: 100 * time.Millisecond, DialConc: 8, DialTimeout: 5 * time.Second, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	if cr.Connected != 50 || cr.LostDuringHold != 0 || cr.After == nil {
		t.Fatalf("connections: %+v", cr)
	}
	// The test process is the server here (and the workers' parent, whose
	// pipes count too): at least 50 more fds while connected.
	if d := cr.After.FDs - cr.Before.FDs; d < 50 || d > 60 {
		t.Fatalf("fds %d -> %d", cr.Before.FDs, cr.After.FDs)
	}
}

func TestPlotAndMarkdown(t *testing.T) {
	r := &compareReport{Workload: "echo", Rounds: 2, Servers: []string{"wsmill", "gorilla"}, Metrics: workloadMetrics["echo"],
		Host: hostInfo(), Started: time.Now()}
	for round := 1; round <= 2; round++ {
		r.Runs = append(r.Runs,
			compareRun{Server: "wsmill", Round: round, Result: map[string]any{"msgs_per_s": 1000.0 * float64(round)}},
			compareRun{Server: "gorilla", Round: round, Result: map[string]any{"msgs_per_s": 500.0}})
	}
	r.summarize()
	if got := r.Ratios["gorilla"]["msgs_per_s"]; got != 500.0/1500.0 {
		t.Fatalf("ratio %v", got)
	}
	dir := t.TempDir()
	if err := writeCompare(r, dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"compare-echo.json", "compare-echo.md", "compare-echo.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

func TestFindRoot(t *testing.T) {
	root, bench, err := findRoot("")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Join(root, "bench") != bench || !isBenchModule(bench) {
		t.Fatalf("root %s bench %s", root, bench)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
}
