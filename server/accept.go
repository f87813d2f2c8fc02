package server

import (
	"os"
	"syscall"
)

// acceptor takes connections off the listening socket with accept4(2)
// directly, so an accepted connection is one raw non-blocking descriptor:
// no net.Conn, no os.File, no runtime poll descriptor. The wait for the
// listener to become readable still goes through the Go runtime (RawConn.Read),
// so Shutdown can interrupt it by closing the listener.
type acceptor struct {
	s     *Server
	spare int                    // a descriptor kept open to be given up when the limit is hit
	sa    syscall.RawSockaddrAny // accept4 writes the peer's address here
}

func newAcceptor(s *Server) *acceptor {
	return &acceptor{s: s, spare: openSpare()}
}

func openSpare() int {
	fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

func (a *acceptor) close() {
	if a.spare >= 0 {
		syscall.Close(a.spare)
		a.spare = -1
	}
}

// acceptAll accepts until the backlog is empty (EAGAIN: returns nil) or a
// non-recoverable error happens (returned).
func (a *acceptor) acceptAll(lfd int) error {
	for {
		fd, errno := a.s.accept4(lfd, &a.sa)
		switch errno {
		case 0:
			// Nagle would hold back small echoes behind unacknowledged ones.
			syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
			// Bound what the kernel may hold for this client (Config.SendBuffer).
			if n := a.s.cfg.SendBuffer; n > 0 {
				syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, n)
			}
			if n := a.s.cfg.RecvBuffer; n > 0 {
				syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
			}
			a.s.register(fd, &a.sa)
		case syscall.EAGAIN:
			return nil
		case syscall.EINTR, syscall.ECONNABORTED, syscall.EPROTO, syscall.EPERM:
			// The connection died in the backlog, or a signal: next.
		case syscall.EMFILE, syscall.ENFILE:
			// Out of descriptors. Leaving the connection in the backlog
			// would make the listener readable forever (a busy loop), so
			// give up the spare descriptor, accept the connection and
			// close it at once, then take the spare back.
			if a.spare < 0 {
				return os.NewSyscallError("accept4", errno)
			}
			syscall.Close(a.spare)
			if fd, errno := a.s.accept4(lfd, nil); errno == 0 {
				syscall.Close(fd)
				a.s.stats.reject(RejectFDLimit)
			}
			a.spare = openSpare()
		default:
			return os.NewSyscallError("accept4", errno)
		}
	}
}
