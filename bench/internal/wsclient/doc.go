// Package wsclient is wsload's own WebSocket client: a blocking Conn
// (Dial, WriteFrame, ReadMessage) for the echo, push, fan-out, connections
// and soak workloads, and the raw pieces (AppendFrame, UpgradeRequest,
// MaskBytes, TCPState) that the soak's hostile clients and the scale
// client's epoll loop build on. It speaks just enough of RFC 6455 to drive
// the servers under test without a library in the way.
//
// Ownership: a Conn's reads (ReadMessage, ReadFrame) belong to one
// goroutine; writes are serialised by the Conn's write lock, so a reader
// may answer pings while a writer sends. A returned payload aliases the
// Conn's buffer until the next read. NC is the socket itself, for
// deadlines and half-closes; BR is the buffered reader over it.
package wsclient
