//go:build linux

package server

import (
	"bytes"
	"os"
	"strconv"
)

// ReadTCPMemory reads the machine's TCP memory. It reads two small files
// of /proc: cheap, but not for a hot path.
func ReadTCPMemory() (TCPMemory, error) {
	m := TCPMemory{PageSize: os.Getpagesize()}
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return m, err
	}
	parseSockstat(b, &m)
	b, err = os.ReadFile("/proc/sys/net/ipv4/tcp_mem")
	if err != nil {
		return m, err
	}
	if f := bytes.Fields(b); len(f) == 3 {
		m.Min, _ = strconv.ParseInt(string(f[0]), 10, 64)
		m.Pressure, _ = strconv.ParseInt(string(f[1]), 10, 64)
		m.Max, _ = strconv.ParseInt(string(f[2]), 10, 64)
	}
	return m, nil
}
