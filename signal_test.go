package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestMain lets the test binary act as the wsmill command for
// TestSignalShutdown, so the real main (flags, signals, exit code) runs in
// its own process.
func TestMain(m *testing.M) {
	if os.Getenv("WSMILL_TEST_MAIN") == "1" {
		os.Args = append([]string{"wsmill"}, strings.Fields(os.Getenv("WSMILL_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSignalShutdown: SIGTERM makes the process stop accepting, send Close
// 1001 to every client and exit 0.
func TestSignalShutdown(t *testing.T) { signalShutdown(t, freePort(t)) }

// TestSignalShutdownTwoAddrs: -addr takes a comma list; one Server serves
// every address, and SIGTERM closes the clients and the ports of all.
func TestSignalShutdownTwoAddrs(t *testing.T) { signalShutdown(t, freePort(t), freePort(t)) }

func signalShutdown(t *testing.T, addrs ...string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WSMILL_TEST_MAIN=1",
		"WSMILL_TEST_ARGS=-addr "+strings.Join(addrs, ",")+" -push-interval 1h -drain-timeout 2s -metrics-addr 127.0.0.1:0")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	var clients []*websocket.Conn
	deadline := time.Now().Add(10 * time.Second)
	for len(clients) < 3*len(addrs) {
		addr := addrs[len(clients)%len(addrs)]
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("dial: %v\n%s", err, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "Hi Client!" {
			t.Fatalf("greeting: got %q, %v; want \"Hi Client!\"", msg, err)
		}
		clients = append(clients, c)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("client %d: got %v; want close 1001", i, err)
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v; want status 0\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("process did not exit after SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "wsmill stopped") {
		t.Errorf("no shutdown log line:\n%s", logs.String())
	}
	// Stopped accepting: every port refuses connections.
	for _, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("dial %s after exit succeeded; want refused", addr)
		}
	}
}
