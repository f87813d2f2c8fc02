package server

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// startServer runs a server on a loopback port for the duration of the test
// and returns it with its address ("127.0.0.1:port"). Shutdown runs in
// t.Cleanup and must finish cleanly.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(testConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return s, serveOn(t, s)
}

// serveOn serves s (made by the test, perhaps with hooks set before it
// serves) on a loopback port until the test ends, then checks that
// Shutdown and Serve end cleanly.
func serveOn(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveListener(t, s, ln)
}

// serveListener is serveOn on a listener of the test's choosing.
func serveListener(t testing.TB, s *Server, ln net.Listener) string {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, ErrServerClosed) { // closed: the test shut it down
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v; want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return ln.Addr().String()
}

// waitFor polls cond every few milliseconds until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
