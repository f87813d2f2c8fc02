package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsmill/wsmill/server"
)

// startMain runs the real wiring (server + newMux) on one loopback port and
// returns "127.0.0.1:port".
func startMain(t *testing.T) string {
	t.Helper()
	addr, _ := startMainMetrics(t)
	return addr
}

// startMainMetrics is startMain that also serves newMetricsMux on a port of
// its own, and returns both addresses.
func startMainMetrics(t *testing.T) (addr, metricsAddr string) {
	t.Helper()
	var srv *server.Server
	srv, err := server.New(withDemo(server.Config{Handler: newMux(func() *server.Server { return srv }), PushInterval: 200 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("Serve returned %v; want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms := &http.Server{Handler: newMetricsMux(func() *server.Server { return srv })}
	go ms.Serve(mln)
	t.Cleanup(func() { ms.Close() })
	return ln.Addr().String(), mln.Addr().String()
}

// get fetches url with a fresh client (no connection reuse) and a timeout.
func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(body)
}

func TestMainPage(t *testing.T) {
	addr := startMain(t)
	resp, body := get(t, "http://"+addr+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %s; want 200", resp.Status)
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "text/html" {
		t.Errorf("GET / Content-Type = %q; want text/html", resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"wsmill", "/ws"} {
		if !strings.Contains(body, want) {
			t.Errorf("GET / body does not contain %q", want)
		}
	}
}

func TestMainHealthz(t *testing.T) {
	addr := startMain(t)
	resp, body := get(t, "http://"+addr+"/healthz")
	if resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Fatalf("GET /healthz = %s %q; want 200 %q", resp.Status, body, "ok\n")
	}
}

func TestMainNotFound(t *testing.T) {
	addr := startMain(t)
	resp, _ := get(t, "http://"+addr+"/nope")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /nope = %s; want 404", resp.Status)
	}
}

func TestMainWebSocket(t *testing.T) {
	addr := startMain(t)
	// HTTP and WebSocket share the port: a page request first, then the upgrade.
	if resp, _ := get(t, "http://"+addr+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %s", resp.Status)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, p, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading greeting: %v", err)
	}
	if typ != websocket.TextMessage || string(p) != "Hi Client!" {
		t.Fatalf("first message %d %q; want text %q", typ, p, "Hi Client!")
	}
}

func TestRunBadFlag(t *testing.T) {
	err := run([]string{"-bogus"})
	if err == nil {
		t.Fatal("run(-bogus) returned nil; want an error")
	}
	if !strings.Contains(err.Error(), "bogus") {
		t.Errorf("run(-bogus) = %v; want an error naming the flag", err)
	}
}

// TestLogServerError: an application panic is logged at error level with
// its fields and the stack as one attribute; other reports as warnings.
func TestLogServerError(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	pe := &server.PanicError{Callback: "OnMessage", FD: 9, RemoteAddr: netip.MustParseAddrPort("127.0.0.1:4000"),
		Value: "boom", Stack: []byte("goroutine 7 [running]:\nmain.f()\n")}
	logServerError(log, fmt.Errorf("wrapped: %w", pe))
	logServerError(log, errors.New("accept4: no buffer space"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines %q; want 2 (the stack inside the first)", len(lines), lines)
	}
	for _, want := range []string{"level=ERROR", `msg="application panic"`, "callback=OnMessage", "fd=9", "remote=127.0.0.1:4000", "value=boom", `stack="goroutine 7 [running]:\nmain.f()\n"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("panic line %q: want %s", lines[0], want)
		}
	}
	if !strings.Contains(lines[1], "level=WARN") || !strings.Contains(lines[1], "no buffer space") {
		t.Errorf("other line %q: want a warning with the error", lines[1])
	}
}
