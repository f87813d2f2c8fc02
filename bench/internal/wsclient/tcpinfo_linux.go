package wsclient

// A client socket's TCP state, read without reading from the socket.

import (
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// tcpState is a socket's TCP state, as TCP_INFO's tcpi_state and
// include/net/tcp_states.h number them.
type TCPState uint8

const (
	StateEstablished TCPState = 1
	StateClose       TCPState = 7 // no connection: here, an RST arrived
	StateCloseWait   TCPState = 8 // the peer's FIN arrived, ours not sent
)

func (st TCPState) String() string {
	switch st {
	case StateEstablished:
		return "ESTABLISHED"
	case StateClose:
		return "CLOSE"
	case StateCloseWait:
		return "CLOSE_WAIT"
	}
	return "state " + strconv.Itoa(int(st))
}

// socketState is nc's TCP state (TCP_INFO). It leaves the receive queue
// alone: a client that must not open its window can still see the server
// end the connection.
func SocketState(nc net.Conn) (TCPState, error) {
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, os.NewSyscallError("getsockopt TCP_INFO", serr)
	}
	return TCPState(info.State), nil
}
