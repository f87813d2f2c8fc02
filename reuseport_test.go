//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// startChild runs the real main in a child process (see TestMain).
func startChild(t *testing.T, args string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if !strings.Contains(args, "-metrics-addr") {
		// Several children run at once: each serves /metrics on a port of
		// its own instead of the default one.
		args += " -metrics-addr 127.0.0.1:0"
	}
	cmd.Env = append(os.Environ(), "WSMILL_TEST_MAIN=1", "WSMILL_TEST_ARGS="+args)
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "wsmill started") {
		if time.Now().After(deadline) {
			t.Fatalf("child %q did not start:\n%s", args, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd, logs
}

func countFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestReusePortTwoProcesses: two processes listen on one address with
// -reuseport and the kernel gives each of them connections. Each process
// says how many it holds on its own /metrics (counting its descriptors
// raced with the first Serve, which opens the spare accept descriptor
// after "wsmill started").
func TestReusePortTwoProcesses(t *testing.T) {
	addr, metricsA, metricsB := freePort(t), freePort(t), freePort(t)
	args := "-addr " + addr + " -reuseport -push-interval 1h"
	startChild(t, args+" -metrics-addr "+metricsA)
	startChild(t, args+" -metrics-addr "+metricsB)

	const n = 64
	for range n {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "Hi Client!" {
			t.Fatalf("greeting: %q, %v", msg, err)
		}
	}
	// Every client has its greeting, so each process counts its share.
	gotA := int(metricValue(scrape(t, metricsA), "wsmill_open_connections"))
	gotB := int(metricValue(scrape(t, metricsB), "wsmill_open_connections"))
	t.Logf("connections: process A %d, process B %d (of %d)", gotA, gotB, n)
	if gotA+gotB != n {
		t.Errorf("got %d + %d connections held; want %d in all", gotA, gotB, n)
	}
	// With 64 connections hashed over two listeners, one side getting
	// fewer than 4 has odds below 1e-13.
	if gotA < 4 || gotB < 4 {
		t.Errorf("connections not spread: A %d, B %d", gotA, gotB)
	}
}

// TestNoReusePortConflict: without -reuseport a second process on the same
// address fails to start, clearly.
func TestNoReusePortConflict(t *testing.T) {
	addr := freePort(t)
	startChild(t, "-addr "+addr+" -push-interval 1h")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WSMILL_TEST_MAIN=1", "WSMILL_TEST_ARGS=-addr "+addr+" -metrics-addr 127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "address already in use") {
		t.Fatalf("second process: err %v, output %q; want exit 1 with 'address already in use'", err, out)
	}
}
