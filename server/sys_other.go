//go:build !linux

package server

import "syscall"

// accept4 is not reached on other systems: New fails first, because the
// poller needs epoll (poller.ErrUnsupported). Nor are the rest.
func accept4(int, *syscall.RawSockaddrAny) (int, syscall.Errno) { return -1, syscall.ENOTSUP }

func (c *conn) setPeer(*syscall.RawSockaddrAny) { c.peerFam = 0 }
func unsent(int) int                            { return 0 }
func unread(int) int                            { return 0 }
func setResetOnClose(int)                       {}
