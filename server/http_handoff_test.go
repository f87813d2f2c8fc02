//go:build linux

package server

// Tests of the hand-off of plain HTTP requests to net/http: the bridge
// listener, and what a handed-off connection may cost (deadlines, the
// connection cap, Shutdown, the half-close). Real loopback sockets, a read
// deadline on every read.

import (
	"errors"
	"net"
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
