//go:build linux

package server

import (
	"syscall"
	"unsafe"
)

// accept4 is accept4(2) without the peer address (syscall.Accept4 would
// allocate a Sockaddr for it). The socket comes back non-blocking.
func accept4(lfd int) (int, syscall.Errno) {
	r, _, errno := syscall.Syscall6(syscall.SYS_ACCEPT4, uintptr(lfd), 0, 0,
		syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
	return int(r), errno
}

// ioctl requests of tcp(7).
const (
	siocINQ  = 0x541B // FIONREAD: bytes received and not read yet
	siocOUTQ = 0x5411 // TIOCOUTQ: bytes written and not yet acknowledged by the peer
)

// sockQueue returns the byte count an ioctl(2) of tcp(7) reports (SIOCINQ,
// SIOCOUTQ), or 0 when the socket cannot tell (closed, not TCP).
func sockQueue(fd int, req uintptr) int {
	var n int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&n)))
	if errno != 0 {
		return 0
	}
	return int(n)
}

// unsent is what the kernel still holds for the peer on fd: bytes not sent
// yet, and bytes sent but not acknowledged.
func unsent(fd int) int { return sockQueue(fd, siocOUTQ) }

// unread is what the kernel holds on fd that the server has not read yet.
func unread(fd int) int { return sockQueue(fd, siocINQ) }

// setResetOnClose makes the next close(2) of fd abortive: the kernel drops
// whatever it still holds for the peer and sends a RST instead of a FIN,
// so no orphaned socket keeps the bytes (SO_LINGER with a zero timeout).
func setResetOnClose(fd int) {
	syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
}
