//go:build !race

package wsclient

import (
	"bufio"
	"bytes"
	"net"
	"testing"
)

// TestMessageAllocs guards the client's hot path: one message written and
// one read, plain and compressed (inflated), over a real TCP loopback
// connection, allocate nothing once the buffers have grown.
func TestMessageAllocs(t *testing.T) {
	for _, deflate := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "deflate"}[deflate], func(t *testing.T) { testMessageAllocs(t, deflate) })
	}
}

func testMessageAllocs(t *testing.T, deflate bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	an, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	bn := <-accepted
	if bn == nil {
		t.Fatal("accept failed")
	}
	defer an.Close()
	defer bn.Close()
	a := &Conn{NC: an, BR: bufio.NewReader(an), z: &deflateState{on: deflate}}
	b := &Conn{NC: bn, BR: bufio.NewReaderSize(bn, 32<<10), z: &deflateState{on: deflate}}
	msg := testJSON(1024)
	var failed bool
	echo := func() {
		if _, err := a.WriteMessage(OpText, msg); err != nil {
			failed = true
			return
		}
		_, p, err := b.ReadMessage()
		if err != nil || !bytes.Equal(p, msg) {
			failed = true
		}
	}
	echo() // grow the buffers, fill the pools
	if n := testing.AllocsPerRun(200, echo); n != 0 || failed {
		t.Fatalf("write + read: %v allocs (failed %v); want 0", n, failed)
	}
}
