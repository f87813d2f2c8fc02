package wsclient

// Kernel receive timestamps, for the fan-out workload.
//
// A reader goroutine that calls time.Now() after ReadMessage returns also
// measures how long the Go scheduler took to run it: with 19,000 readers on
// two cores that is the client's queueing, not the server's fan-out. With
// SO_TIMESTAMPNS the kernel stamps each packet (CLOCK_REALTIME, the clock of
// time.Now().UnixNano()) when it is queued for the receiving socket; on
// loopback that is inside the server's write(2), so the stamp is when the
// server delivered the frame to this connection, whenever the client gets
// round to reading it. recvmsg returns the stamp of the last packet it read.

import (
	"encoding/binary"
	"io"
	"net"
	"syscall"
)

// stampReader reads a TCP socket with recvmsg and keeps the kernel receive
// timestamp of the latest read. It is used by one goroutine at a time (the
// connection's reader), under a bufio.Reader: bufio reads only when its
// buffer is empty, so the bytes of a message that ReadMessage has just
// returned came in the latest read, and last is their arrival (the later
// one when two messages were read at once).
type stampReader struct {
	rc   syscall.RawConn
	oob  [64]byte
	last int64 // unix ns of the latest read's stamp; 0 when it had none
}

func newStampReader(nc net.Conn) (*stampReader, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, syscall.EINVAL
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &stampReader{rc: rc}, nil
}

// Read is recvmsg through the runtime's poller, so read deadlines and Close
// work as on the net.Conn.
func (r *stampReader) Read(p []byte) (int, error) {
	var n, oobn int
	var rerr error
	err := r.rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), p, r.oob[:], 0)
		return rerr != syscall.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	r.last = parseStamp(r.oob[:oobn])
	return n, nil
}

// parseStamp returns the SCM_TIMESTAMPNS time in oob as unix ns, or 0.
func parseStamp(oob []byte) int64 {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
			// struct timespec: tv_sec, tv_nsec, both 64-bit on the
			// 64-bit Linux targets this tool runs on.
			sec := int64(binary.NativeEndian.Uint64(m.Data[0:]))
			nsec := int64(binary.NativeEndian.Uint64(m.Data[8:]))
			return sec*1e9 + nsec
		}
	}
	return 0
}
