// Package wsclient is wsload's own WebSocket client: a blocking Conn
// (Dial, WriteFrame, ReadMessage) for the echo, push, fan-out, connections
// and soak workloads, and the raw pieces (AppendFrame, UpgradeRequest,
// MaskBytes, TCPState) that the soak's hostile clients and the scale
// client's epoll loop build on. It speaks just enough of RFC 6455 to drive
// the servers under test without a library in the way.
//
// With Options.Deflate a Conn offers permessage-deflate (RFC 7692) without
// context takeover either way (deflate.go): WriteMessage compresses each
// text or binary message on its own (klauspost/compress's stateless
// encoder, output in the Conn's buffer), and ReadMessage inflates a
// compressed reply with a decompressor from a pool shared by all Conns,
// into the Conn's buffer, at most MaxFrame bytes. A Conn keeps no
// compression window, and a message written and read allocates nothing
// (TestMessageAllocs). A server that declines the offer leaves the Conn
// plain; an answer this client cannot honour fails the Dial.
//
// Ownership: a Conn's reads (ReadMessage, ReadFrame) belong to one
// goroutine; writes are serialised by the Conn's write lock, so a reader
// may answer pings while a writer sends. A returned payload aliases the
// Conn's buffer until the next read. NC is the socket itself, for
// deadlines and half-closes; BR is the buffered reader over it.
package wsclient
