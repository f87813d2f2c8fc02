//go:build linux

package server

import "syscall"

// accept4 is accept4(2) without the peer address (syscall.Accept4 would
// allocate a Sockaddr for it). The socket comes back non-blocking.
func accept4(lfd int) (int, syscall.Errno) {
	r, _, errno := syscall.Syscall6(syscall.SYS_ACCEPT4, uintptr(lfd), 0, 0,
		syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
	return int(r), errno
}
