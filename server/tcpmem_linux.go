//go:build linux

package server

import "os"

// ReadTCPMemory reads the machine's TCP memory. It reads two small files
// of /proc: cheap, but not for a hot path.
func ReadTCPMemory() (TCPMemory, error) {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return TCPMemory{}, err
	}
	m, err := parseSockstat(b)
	m.PageSize = os.Getpagesize()
	if err != nil {
		return m, err
	}
	if b, err = os.ReadFile("/proc/sys/net/ipv4/tcp_mem"); err != nil {
		return m, err
	}
	m.Min, m.Pressure, m.Max, err = parseTCPMemLimits(b)
	return m, err
}
