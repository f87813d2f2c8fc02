//go:build linux

package server

// Tests of the hand-off of plain HTTP requests to net/http: the bridge
// listener, and what a handed-off connection may cost (deadlines, the
// connection cap, Shutdown, the half-close). Real loopback sockets, a read
// deadline on every read.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// hoClosed reports whether the peer of nc has closed: a read returns EOF
// (net.Pipe) or an error other than our own deadline within d.
func hoClosed(nc net.Conn, d time.Duration) error {
	nc.SetReadDeadline(time.Now().Add(d))
	var buf [512]byte
	for {
		_, err := nc.Read(buf[:])
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return err
		}
		return nil
	}
}

// TestBridgeCloseClosesQueued: a connection handed to the bridge is closed
// by the bridge if net/http never takes it, whichever of deliver and Close
// comes first, and even when they race.
func TestBridgeCloseClosesQueued(t *testing.T) {
	tests := []struct {
		name string
		run  func(l *bridgeListener, c net.Conn)
	}{
		{"deliver, nobody accepts, then Close", func(l *bridgeListener, c net.Conn) {
			l.deliver(c)
			l.Close()
		}},
		{"Close, then deliver", func(l *bridgeListener, c net.Conn) {
			l.Close()
			l.deliver(c)
		}},
		{"deliver racing Close", func(l *bridgeListener, c net.Conn) {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); l.deliver(c) }()
			go func() { defer wg.Done(); l.Close() }()
			wg.Wait()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 50 {
				ours, theirs := net.Pipe()
				defer theirs.Close()
				tt.run(newBridgeListener(), ours)
				if err := hoClosed(theirs, time.Second); err != nil {
					t.Fatalf("peer read after bridge Close: got %v; want EOF (the bridge closed the conn)", err)
				}
			}
		})
	}
}

// hoStall opens a connection and sends a plain HTTP request that declares a
// body it never sends.
func hoStall(t testing.TB, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: got %v; want a connection", err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")); err != nil {
		t.Fatalf("write: got %v; want no error", err)
	}
	return nc
}

// hoEventually polls cond every millisecond until it holds or d passes.
func hoEventually(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			return false
		}
	}
	return true
}

// hoGoroutinesBack waits until the goroutine count is back to at most
// limit and returns the last count.
func hoGoroutinesBack(limit int, d time.Duration) int {
	g := runtime.NumGoroutine()
	hoEventually(d, func() bool { g = runtime.NumGoroutine(); return g <= limit })
	return g
}

// TestHTTPHandoffStalledBody: a plain HTTP request whose declared body never
// comes holds its descriptor and net/http's goroutines only until
// HandshakeTimeout after the accept; while held, the descriptor is counted.
func TestHTTPHandoffStalledBody(t *testing.T) {
	const clients = 50
	const timeout = 300 * time.Millisecond
	runtime.GC()
	s, addr := startServer(t, Config{HandshakeTimeout: timeout})
	baseline := runtime.NumGoroutine()

	start := time.Now()
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = hoStall(t, addr)
	}
	// Sampled while they are held (they all are for the first few hundred
	// milliseconds): the peak must be all of them, and Live includes them.
	var peak, live int64
	hoEventually(timeout, func() bool {
		st := s.Stats()
		if st.HTTPConns > peak {
			peak, live = st.HTTPConns, st.Live
		}
		return peak == clients
	})
	if peak != clients {
		t.Errorf("Stats.HTTPConns while the requests stall: got peak %d; want %d", peak, clients)
	}
	if live < peak {
		t.Errorf("Stats.Live with %d HTTP connections: got %d; want at least %d", peak, live, peak)
	}

	errs := make(chan error, clients)
	for _, nc := range conns {
		go func() { errs <- hoClosed(nc, 1500*time.Millisecond-time.Since(start)) }()
	}
	open := 0
	for range clients {
		if err := <-errs; err != nil {
			open++
		}
	}
	if open > 0 {
		t.Errorf("stalled requests still open %v after they were sent: got %d; want 0", time.Since(start).Round(time.Millisecond), open)
	}
	if g := hoGoroutinesBack(baseline+5, 2*time.Second); g > baseline+5 {
		t.Errorf("goroutines after the stalled requests: got %d; want at most %d (baseline %d + 5)", g, baseline+5, baseline)
	}
	if !hoEventually(2*time.Second, func() bool { st := s.Stats(); return st.HTTPConns == 0 && st.Live == 0 }) {
		st := s.Stats()
		t.Errorf("after the stalled requests: got HTTPConns %d, Live %d; want 0, 0", st.HTTPConns, st.Live)
	}
}

// TestHTTPHandoffShutdownClosesStalled: plain HTTP requests still open when
// Shutdown's context ends are closed, and Shutdown returns at about that
// time.
func TestHTTPHandoffShutdownClosesStalled(t *testing.T) {
	const clients = 5
	const drain = 300 * time.Millisecond
	runtime.GC()
	baseline := runtime.NumGoroutine()
	s, err := New(Config{HandshakeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = hoStall(t, ln.Addr().String())
	}
	waitFor(t, 5*time.Second, "the stalled requests to reach net/http", func() bool {
		return s.Stats().HTTPConns == clients
	})

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err = s.Shutdown(ctx)
	took := time.Since(start)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: got %v; want nil or context.DeadlineExceeded", err)
	}
	if took > drain+time.Second {
		t.Errorf("Shutdown took %v; want about its context's %v", took, drain)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: got %v; want ErrServerClosed", err)
	}
	for i, nc := range conns {
		if err := hoClosed(nc, time.Second); err != nil {
			t.Errorf("client %d read after Shutdown: got %v; want EOF or reset (closed by Shutdown)", i, err)
		}
	}
	if !hoEventually(time.Second, func() bool { return s.Stats().HTTPConns == 0 }) {
		t.Errorf("Stats.HTTPConns after Shutdown: got %d; want 0", s.Stats().HTTPConns)
	}
	if g := hoGoroutinesBack(baseline+2, 2*time.Second); g > baseline+2 {
		t.Errorf("goroutines after Shutdown: got %d; want at most %d (baseline %d + 2)", g, baseline+2, baseline)
	}
}

// TestHTTPHandoffCloseWrite: when the handler leaves most of a large body
// unread, net/http half-closes (FIN) after the response and waits before the
// full close, which then resets (RST) because of the unread bytes. The
// client must see the whole response and then EOF; without the half-close
// it sees ECONNRESET, and a slower client could lose the response itself.
func TestHTTPHandoffCloseWrite(t *testing.T) {
	const declared, sent = 1 << 20, 300 << 10
	_, addr := startServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n") // the body is never read
	})})
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: got %v; want a connection", err)
	}
	defer nc.Close()
	req := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(declared) + "\r\n\r\n"
	go func() {
		// Errors are expected once the server has closed.
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		nc.Write(append([]byte(req), make([]byte, sent)...))
	}()

	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(nc)
	resp, perr := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
	if perr != nil {
		t.Fatalf("response: got %q (%v); want a 200 with body ok", got, perr)
	}
	body, berr := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" || berr != nil {
		t.Errorf("response: got %s %q (%v); want 200 \"ok\\n\"", resp.Status, body, berr)
	}
	if err != nil {
		t.Errorf("read after the response: got %v; want EOF (a FIN, not a reset)", err)
	}
}

// TestHTTPHandoffConnLimit: past MaxHTTPConns a plain HTTP request gets a
// 503 and is counted; once the held requests time out, requests are served
// again.
func TestHTTPHandoffConnLimit(t *testing.T) {
	const limit = 4
	s, addr := startServer(t, Config{
		HandshakeTimeout: time.Second,
		MaxHTTPConns:     limit,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok\n")
		}),
	})
	for range limit {
		hoStall(t, addr)
	}
	waitFor(t, 5*time.Second, "the stalled requests to reach net/http", func() bool {
		return s.Stats().HTTPConns == limit
	})
	get := func() (rawResponse, error) {
		rc := rawDial(t, addr)
		rc.write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		return rc.readResponse(5 * time.Second)
	}

	resp, err := get()
	if err != nil || resp.status != http.StatusServiceUnavailable || resp.get("Connection") != "close" {
		t.Errorf("request past the limit: got %q, Connection %q (%v); want 503, Connection close", resp.line, resp.get("Connection"), err)
	}
	if st := s.Stats(); st.RejectedBy[RejectHTTPLimit] != 1 || st.HTTPConns != limit {
		t.Errorf("after the refusal: got rejected{http_limit} %d, HTTPConns %d; want 1, %d", st.RejectedBy[RejectHTTPLimit], st.HTTPConns, limit)
	}

	waitFor(t, 5*time.Second, "the stalled requests to time out", func() bool {
		return s.Stats().HTTPConns == 0
	})
	if resp, err := get(); err != nil || resp.status != http.StatusOK {
		t.Errorf("request once the stalled ones are gone: got %q (%v); want 200", resp.line, err)
	}
}

// TestHTTPHandoffHijack: a hijacked connection belongs to its handler,
// deadlines included: it is not held to the request's deadline, and it is
// counted until the handler closes it.
func TestHTTPHandoffHijack(t *testing.T) {
	const timeout = 200 * time.Millisecond
	s, addr := startServer(t, Config{
		HandshakeTimeout: timeout,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			nc, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("Hijack: got %v; want no error", err)
				return
			}
			defer nc.Close()
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := brw.ReadString('\n')
			if err != nil {
				t.Errorf("hijacked read past the request deadline: got %v; want a line", err)
				return
			}
			brw.WriteString("got " + line)
			brw.Flush()
		}),
	})
	rc := rawDial(t, addr)
	rc.write([]byte("GET /raw HTTP/1.1\r\nHost: x\r\n\r\n"))
	waitFor(t, 5*time.Second, "the hijacked connection to be counted", func() bool {
		return s.Stats().HTTPConns == 1
	})
	time.Sleep(2 * timeout)
	rc.write([]byte("hello\n"))
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := rc.br.ReadString('\n'); got != "got hello\n" {
		t.Errorf("answer on the hijacked connection: got %q (%v); want %q", got, err, "got hello\n")
	}
	waitFor(t, 5*time.Second, "the hijacked connection to be uncounted", func() bool {
		return s.Stats().HTTPConns == 0
	})
}
