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
//
// One acceptor per listener (per Serve goroutine); the spare descriptor
// given up at the open-file limit is the Server's, one for all of them.
type acceptor struct {
	s  *Server
	sa syscall.RawSockaddrAny // accept4 writes the peer's address here
}

func openSpare() int {
	fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// closeSpare gives the spare descriptor back for good (Shutdown, after
// every accept loop has returned).
func (s *Server) closeSpare() {
	s.spareMu.Lock()
	if s.spare >= 0 {
		syscall.Close(s.spare)
		s.spare = -1
	}
	s.spareMu.Unlock()
}

// shedOne accepts one connection from lfd and closes it at once, with the
// descriptor the spare frees, then takes the spare back. It reports false
// when there is no spare to give up.
func (s *Server) shedOne(lfd int) bool {
	s.spareMu.Lock()
	defer s.spareMu.Unlock()
	if s.spare < 0 {
		// Shutdown has closed it, or it could not be reopened last
		// time: try once more.
		if s.spare = openSpare(); s.spare < 0 {
			return false
		}
	}
	syscall.Close(s.spare)
	if fd, errno := s.accept4(lfd, nil); errno == 0 {
		syscall.Close(fd)
		s.stats.reject(RejectFDLimit)
	}
	s.spare = openSpare()
	return true
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
			if !a.s.shedOne(lfd) {
				return os.NewSyscallError("accept4", errno)
			}
		default:
			return os.NewSyscallError("accept4", errno)
		}
	}
}
