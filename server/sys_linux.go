//go:build linux

package server

import (
	"syscall"
	"unsafe"
)

// accept4 is accept4(2) writing the peer's address into sa (nil: not
// wanted). syscall.Accept4 would allocate a Sockaddr for it. The socket
// comes back non-blocking.
func accept4(lfd int, sa *syscall.RawSockaddrAny) (int, syscall.Errno) {
	n := uint32(syscall.SizeofSockaddrAny)
	var p, np uintptr
	if sa != nil {
		p, np = uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(&n))
	}
	r, _, errno := syscall.Syscall6(syscall.SYS_ACCEPT4, uintptr(lfd), p, np,
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

// setPeer records the address accept4 wrote in sa as c's peer (none for a
// family other than IPv4 and IPv6). Caller holds c.mu.
func (c *conn) setPeer(sa *syscall.RawSockaddrAny) {
	c.peerFam = 0
	switch sa.Addr.Family {
	case syscall.AF_INET:
		in := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		copy(c.peerIP[:4], in.Addr[:])
		c.peerPort, c.peerFam = netPort(in.Port), 4
	case syscall.AF_INET6:
		in := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		c.peerIP = in.Addr
		c.peerPort, c.peerFam = netPort(in.Port), 6
	}
}

// netPort reads a port stored in network byte order.
func netPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
