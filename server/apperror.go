package server

import (
	"fmt"
	"net/netip"
	"runtime/debug"
	"strings"
)

// PanicError is what Config.OnError receives when an application callback
// panics. The server has recovered, counted it (Stats.AppPanics) and acted
// as for any failure of that callback: the connection is closed with 1011
// (OnOpen, OnMessage; after OnClose it is closing already), the upgrade is
// refused with 500 (OnUpgrade), or the push sends nothing this tick
// (Push.Frame). Get it with errors.As.
type PanicError struct {
	// Callback is the one that panicked: "OnOpen", "OnMessage", "OnClose",
	// "OnDrain", "OnUpgrade", "Push.Frame" or "Go" (a job run by Conn.Go).
	Callback string

	// Conn is the connection the callback ran for, still readable from
	// OnError (Value, RemoteAddr); the zero Conn for OnUpgrade (nothing is
	// open yet) and Push.Frame (no connection).
	Conn Conn

	// FD is the connection's descriptor number (the upgrade request's for
	// OnUpgrade); -1 for Push.Frame.
	FD int

	// RemoteAddr is the client's address; zero for Push.Frame.
	RemoteAddr netip.AddrPort

	// Value is what the callback passed to panic.
	Value any

	// Stack is the panicking goroutine's stack trace, taken while the
	// panic was being recovered: the callback's frames are in it, under
	// those of the panic.
	Stack []byte
}

// Error is one line (callback, connection, panic value), then the stack.
func (e *PanicError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server: %s panicked", e.Callback)
	if e.FD >= 0 {
		fmt.Fprintf(&b, " (fd %d", e.FD)
		if e.RemoteAddr.IsValid() {
			fmt.Fprintf(&b, ", %v", e.RemoteAddr)
		}
		b.WriteByte(')')
	}
	fmt.Fprintf(&b, ": %v\n%s", e.Value, e.Stack)
	return b.String()
}

// Unwrap returns the panic value when it is an error, so that errors.Is
// and errors.As see through the panic.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// panicError describes a panic with value v in callback, run for c (nil
// for none). Called while the panic is being recovered, on the goroutine
// that runs c: a panic is rare, and the allocations here are its own.
func (s *Server) panicError(callback string, c *conn, v any) *PanicError {
	e := &PanicError{Callback: callback, FD: -1, Value: v, Stack: debug.Stack()}
	if c != nil {
		e.FD, e.RemoteAddr = c.fd, c.remoteAddr()
		if callback != "OnUpgrade" {
			e.Conn = s.handle(c)
		}
	}
	return e
}
